/**
 * Edge benchmark: the batch route against a hello-world route and a validate-only route (auth, parse,
 * validate: the floor) in the same workerd (scripts/edge-dev.ts, no inspector),
 * the DedupeShard's checks per second, and the Bloom filter's size and measured false-positive rate.
 *
 *   node --import tsx bench/edge-bench.ts            # 10 s per route
 *   EDGE_BENCH_SECONDS=3 node --import tsx bench/edge-bench.ts
 *
 * It starts its own REST proxy stand-in on loopback that accepts every record at once (so the figure
 * is the edge's own cost, not the log's) and `wrangler dev` on a free loopback port with local
 * Durable Object storage in a temporary directory. Everything is bounded in time.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { freePort, startWranglerDev } from '../edge/test/wrangler-dev.js'

/** Credentials the bench's proxy stand-in checks, as core's gateway does. */
const PROXY_USER = 'edge_bench'
const PROXY_PASSWORD = 'proxy-secret-bench'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')

export interface EdgeBenchOptions {
  /** Seconds of load per route. @default 10 */
  seconds?: number
  /** Requests in flight at once. @default 16 */
  concurrency?: number
  /** Events per batch request. @default 50 */
  batchSize?: number
  /** Extra Worker variables (e.g. DEDUPE_SHARDS) to compare settings. */
  vars?: Record<string, string>
}

export interface EdgeBenchResult {
  seconds: number
  concurrency: number
  batchSize: number
  hello: { requests: number; rps: number; p50ms: number; p99ms: number }
  /** The same batches through a route that only authenticates, parses and validates (BENCH_ROUTES=1). */
  validate: { requests: number; rps: number; p50ms: number; p99ms: number; non200: number }
  batch: { requests: number; rps: number; eventsPerSecond: number; p50ms: number; p99ms: number; non202: number }
  /** batch requests/s divided by hello-world requests/s */
  ratio: number
  /**
   * CPU time the whole `wrangler dev` process tree (workerd and wrangler's own proxy) spent per
   * request in each phase, from /proc (Linux; absent elsewhere). On a shared machine throughput
   * swings with other people's load; CPU per request hardly does, so `cpuRatio` (hello CPU per
   * request / batch CPU per request) is the steadier figure to compare builds by.
   */
  cpu?: {
    helloMsPerRequest: number; validateMsPerRequest: number; batchMsPerRequest: number; batchMsPerEvent: number; cpuRatio: number
    /** batch CPU per request over validate-only CPU per request (target ≤ 3) */
    batchOverValidate: number
  }
  /**
   * CPU this process (the load generator and the proxy stand-in) spent per request in each phase: it
   * shares the machine's cores with workerd, so it bounds every phase's requests/s too.
   */
  benchCpu: { helloMsPerRequest: number; validateMsPerRequest: number; batchMsPerRequest: number }
  dedupe: {
    checks: number; checksPerSecond: number
    /** The batch phase's confirms over every shard: keys, calls, and keys per call (the isolate coalesces concurrent requests' confirms). */
    confirms: number; confirmCalls: number; keysPerConfirmCall: number
  }
  bloom: { capacity: number; fpRate: number; bits: number; hashes: number; bytesPerKey: number; measuredFpRate: number; probes: number }
  proxyRecords: number
}

const answers = new Map<number, string>()
function offsetsAnswer(n: number): string {
  let a = answers.get(n)
  if (a === undefined) {
    a = JSON.stringify({ offsets: Array.from({ length: n }, (_, i) => ({ partition: 0, offset: i, error_code: null, error: null })) })
    answers.set(n, a)
  }
  return a
}

/** A REST Proxy v2 stand-in that takes everything immediately. */
export function fastProxy(port: number): Promise<{ server: Server; records: () => number }> {
  let records = 0
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      // The records are counted, not parsed: base64 keys and values hold no quote, so each record
      // has exactly one `"key":` (what the stand-in spends per request takes cores from workerd).
      const text = Buffer.concat(chunks).toString('latin1')
      let n = 0
      for (let at = text.indexOf('"key":'); at >= 0; at = text.indexOf('"key":', at + 6)) n++
      // Like core's gateway: a produce call without the edge's credentials is refused.
      if (req.headers.authorization !== `Basic ${Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64')}`) {
        res.writeHead(401, { 'content-type': 'application/vnd.kafka.v2+json' })
        res.end(JSON.stringify({ error_code: 40101, message: 'Unauthorized' }))
        return
      }
      if (req.url?.startsWith('/topics/ad-events')) records += n
      res.writeHead(200, { 'content-type': 'application/vnd.kafka.v2+json' })
      res.end(offsetsAnswer(n))
    })
  })
  return new Promise((r) => server.listen(port, '127.0.0.1', () => r({ server, records: () => records })))
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
function ulidTime(ms: number): string {
  let t = ms
  let time = ''
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time
    t = Math.floor(t / 32)
  }
  return time
}

export function ulid(): string {
  return ulids(1)[0]!
}

/**
 * `n` ULIDs of one millisecond from one call for random bytes: the load generator shares the
 * machine's cores with workerd, so what it spends per request lowers every route's requests/s.
 */
export function ulids(n: number, now = Date.now()): string[] {
  const time = ulidTime(now)
  const bytes = randomBytes(16 * n)
  const out: string[] = new Array<string>(n)
  for (let k = 0; k < n; k++) {
    let rand = ''
    for (let i = 16 * k; i < 16 * k + 16; i++) rand += CROCKFORD[bytes[i]! & 31]
    out[k] = time + rand
  }
  return out
}

/** CPU seconds used so far by a process and all its descendants (Linux /proc); undefined elsewhere. */
function treeCpuSeconds(rootPid: number): number | undefined {
  let entries: string[]
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e))
  } catch {
    return undefined
  }
  const stats = new Map<number, { ppid: number; ticks: number }>()
  for (const e of entries) {
    try {
      const text = readFileSync(`/proc/${e}/stat`, 'utf8')
      // Fields after the command name (which may hold spaces) in parentheses.
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
      stats.set(Number(e), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) })
    } catch {
      // the process ended meanwhile
    }
  }
  if (!stats.has(rootPid)) return undefined
  const children = new Map<number, number[]>()
  for (const [pid, st] of stats) children.set(st.ppid, [...(children.get(st.ppid) ?? []), pid])
  let ticks = 0
  const todo = [rootPid]
  while (todo.length > 0) {
    const pid = todo.pop()!
    ticks += stats.get(pid)?.ticks ?? 0
    todo.push(...(children.get(pid) ?? []))
  }
  return ticks / 100 // USER_HZ is 100 on Linux
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 100) / 100
}

async function load(seconds: number, concurrency: number, send: () => Promise<number>): Promise<{ requests: number; latencies: number[]; bad: number }> {
  const until = Date.now() + seconds * 1000
  const latencies: number[] = []
  let bad = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < until) {
      const t0 = performance.now()
      const status = await send().catch(() => 0)
      latencies.push(performance.now() - t0)
      if (status !== 200 && status !== 202) bad++
    }
  }))
  return { requests: latencies.length, latencies: latencies.sort((a, b) => a - b), bad }
}

interface BloomModule {
  bloomSizing(capacity: number, fpRate: number): { bits: number; hashes: number }
  BloomFilter: new (s: { bits: number; hashes: number }) => { add(k: string): void; has(k: string): boolean; byteLength: number }
}

/** Fills one generation to capacity with random 32-hex keys (like idempotency keys) and probes fresh ones. */
async function measureBloom(capacity: number, fpRate: number): Promise<EdgeBenchResult['bloom']> {
  // The filter the edge's DedupeShard uses, shared with core (schemas/src/bloom.ts).
  const mod = (await import(pathToFileURL(join(ROOT, 'schemas/src/bloom.ts')).href)) as BloomModule
  const sizing = mod.bloomSizing(capacity, fpRate)
  const f = new mod.BloomFilter(sizing)
  for (let i = 0; i < capacity; i++) f.add(randomBytes(16).toString('hex'))
  const probes = Math.max(100_000, capacity)
  let fp = 0
  for (let i = 0; i < probes; i++) if (f.has(randomBytes(16).toString('hex'))) fp++
  return {
    capacity, fpRate, bits: sizing.bits, hashes: sizing.hashes,
    bytesPerKey: Math.round((f.byteLength / capacity) * 1000) / 1000,
    measuredFpRate: Math.round((fp / probes) * 100_000) / 100_000,
    probes,
  }
}

export async function runEdgeBench(opts: EdgeBenchOptions = {}): Promise<EdgeBenchResult> {
  const seconds = opts.seconds ?? 10
  const concurrency = opts.concurrency ?? 16
  const batchSize = opts.batchSize ?? 50
  const bloomCapacity = 200_000
  const bloomFp = 0.01
  const proxyPort = await freePort()
  const proxy = await fastProxy(proxyPort)
  const publisherKey = 'pk_bench'
  const syncKey = 'edge_sync_bench'
  const config = {
    version: 1,
    campaignIds: ['cmp_1'],
    publishers: [{
      id: 'pub_bench', apiKeyHashes: [createHash('sha256').update(publisherKey).digest('hex')], signingKeys: {},
      rateLimit: { perSecond: 10_000_000, burst: 10_000_000 }, active: true,
    }],
  }
  const dev = await startWranglerDev({
    REST_PROXY_URL: `http://127.0.0.1:${proxyPort}`,
    CORE_URL: `http://127.0.0.1:${proxyPort}`,
    EDGE_SYNC_KEY: syncKey,
    REST_PROXY_USER: PROXY_USER,
    REST_PROXY_PASSWORD: PROXY_PASSWORD,
    EDGE_CONFIG_JSON: JSON.stringify(config),
    BLOOM_CAPACITY: String(bloomCapacity),
    BLOOM_FP_RATE: String(bloomFp),
    BENCH_ROUTES: '1',
    ...opts.vars,
  })
  const edge = dev.url
  try {
    // Warm up both routes (module load, DO creation).
    for (let i = 0; i < 20; i++) await (await fetch(`${edge}/healthz`)).arrayBuffer()

    const cpu0 = dev.pid === undefined ? undefined : treeCpuSeconds(dev.pid)
    const own0 = process.cpuUsage()
    const hello = await load(seconds, concurrency, async () => {
      const res = await fetch(`${edge}/healthz`)
      await res.arrayBuffer()
      return res.status
    })
    const post = async (path: string) => {
      const now = Date.now()
      const ids = ulids(2 * batchSize, now)
      const events = Array.from({ length: batchSize }, (_, i) => ({
        eventId: ids[2 * i], ts: now, adId: 'ad_1', campaignId: 'cmp_1', publisherId: 'pub_bench',
        requestId: `req_${i}`, impressionId: `imp_${ids[2 * i + 1]}`, channel: 'web',
      }))
      const res = await fetch(`${edge}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${publisherKey}`, 'cf-connecting-ip': '203.0.113.9', 'user-agent': 'edge-bench' },
        body: JSON.stringify({ events }),
      })
      await res.arrayBuffer()
      return res.status
    }
    const cpu1 = dev.pid === undefined ? undefined : treeCpuSeconds(dev.pid)
    const own1 = process.cpuUsage()
    // The floor: authenticate, parse and validate the same batch (edge/src/routes/bench.ts).
    const validate = await load(seconds, concurrency, () => post('/v1/bench/validate/impressions'))
    const cpu2 = dev.pid === undefined ? undefined : treeCpuSeconds(dev.pid)
    const own2 = process.cpuUsage()
    const batch = await load(seconds, concurrency, () => post('/v1/events/impressions:batch'))
    const cpu3 = dev.pid === undefined ? undefined : treeCpuSeconds(dev.pid)
    const own3 = process.cpuUsage()
    const ownMs = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage, n: number) => Math.round(((b.user + b.system - a.user - a.system) / 1000 / Math.max(1, n)) * 100) / 100
    const bench = { helloMsPerRequest: ownMs(own0, own1, hello.requests), validateMsPerRequest: ownMs(own1, own2, validate.requests), batchMsPerRequest: ownMs(own2, own3, batch.requests) }
    const cpu = cpu0 !== undefined && cpu1 !== undefined && cpu2 !== undefined && cpu3 !== undefined && hello.requests > 0 && batch.requests > 0 && validate.requests > 0
      ? (() => {
          const helloMs = ((cpu1 - cpu0) * 1000) / hello.requests
          const validateMs = ((cpu2 - cpu1) * 1000) / validate.requests
          const batchMs = ((cpu3 - cpu2) * 1000) / batch.requests
          return {
            helloMsPerRequest: Math.round(helloMs * 100) / 100, validateMsPerRequest: Math.round(validateMs * 100) / 100,
            batchMsPerRequest: Math.round(batchMs * 100) / 100, batchMsPerEvent: Math.round((batchMs / batchSize) * 1000) / 1000,
            cpuRatio: Math.round((helloMs / batchMs) * 1000) / 1000, batchOverValidate: Math.round((batchMs / validateMs) * 100) / 100,
          }
        })()
      : undefined

    // Confirms run after the answers (waitUntil, coalesced per isolate): let the last ones land.
    await new Promise((r) => setTimeout(r, 500))
    let confirms = 0
    let confirmCalls = 0
    for (let shard = 0; shard < Number(opts.vars?.DEDUPE_SHARDS ?? 8); shard++) {
      const st = (await (await fetch(`${edge}/v1/internal/dedupe/${shard}`, { headers: { authorization: `Bearer ${syncKey}` } })).json()) as { confirms: number; confirmCalls: number }
      confirms += st.confirms
      confirmCalls += st.confirmCalls
    }

    const t0 = performance.now()
    const dedupeRes = await fetch(`${edge}/v1/internal/dedupe-bench`, {
      method: 'POST', headers: { authorization: `Bearer ${syncKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rounds: 40, batch: 500, shard: 7 }),
    })
    const dedupe = (await dedupeRes.json()) as { checked: number }
    const dedupeSeconds = (performance.now() - t0) / 1000

    const helloRps = hello.requests / seconds
    const batchRps = batch.requests / seconds
    return {
      seconds, concurrency, batchSize,
      hello: { requests: hello.requests, rps: Math.round(helloRps), p50ms: percentile(hello.latencies, 50), p99ms: percentile(hello.latencies, 99) },
      batch: {
        requests: batch.requests, rps: Math.round(batchRps), eventsPerSecond: Math.round((batch.requests - batch.bad) * batchSize / seconds),
        p50ms: percentile(batch.latencies, 50), p99ms: percentile(batch.latencies, 99), non202: batch.bad,
      },
      validate: { requests: validate.requests, rps: Math.round(validate.requests / seconds), p50ms: percentile(validate.latencies, 50), p99ms: percentile(validate.latencies, 99), non200: validate.bad },
      ratio: Math.round((batchRps / helloRps) * 1000) / 1000,
      ...(cpu ? { cpu } : {}),
      benchCpu: bench,
      dedupe: {
        checks: dedupe.checked, checksPerSecond: Math.round(dedupe.checked / dedupeSeconds),
        confirms, confirmCalls, keysPerConfirmCall: confirmCalls > 0 ? Math.round((confirms / confirmCalls) * 10) / 10 : 0,
      },
      bloom: await measureBloom(bloomCapacity, bloomFp),
      proxyRecords: proxy.records(),
    }
  } finally {
    await dev.stop()
    await new Promise<void>((r) => proxy.server.close(() => r()))
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const seconds = Number(process.env.EDGE_BENCH_SECONDS ?? 10)
  const shards = process.env.EDGE_BENCH_DEDUPE_SHARDS
  runEdgeBench({ seconds, vars: { ...(shards ? { DEDUPE_SHARDS: shards } : {}), ...(process.env.BENCH_SKIP ? { BENCH_SKIP: process.env.BENCH_SKIP } : {}) } }).then((r) => {
    console.log(JSON.stringify(r, null, 2))
  }).catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
