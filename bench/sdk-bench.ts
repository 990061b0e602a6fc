/**
 * The JS SDK (sdk/js): bundle size for browsers (esbuild, minified, gzip), bytes per event on the
 * wire, the SDK's own cost (events per CPU-second of the app process, against a loopback server in
 * another process that answers every batch at once), and events per second one client hands to the
 * real edge (workerd via wrangler dev, core behind it) until every event is accepted.
 *
 *   node --import tsx bench/sdk-bench.ts     (BENCH_SDK_EVENTS=20000 by default)
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { createClient, type Auth, type QueueStorage } from '@adc/sdk'
import { fileStorage } from '@adc/sdk/node'
import type { FetchLike } from '../sdk/js/src/transport.js'
import { ROOT, BENCH_API_LIMIT, startCore, startEdge } from '../test/e2e/system.js'

const ADMIN = 'admin_demo_dev'

async function bundleSize(contents: string): Promise<{ minifiedBytes: number; gzipBytes: number }> {
  const out = await build({
    stdin: { contents, resolveDir: ROOT, loader: 'ts' }, bundle: true, minify: true, format: 'esm', platform: 'browser',
    target: 'es2020', write: false, logLevel: 'silent',
  })
  const code = out.outputFiles[0]!.contents
  return { minifiedBytes: code.byteLength, gzipBytes: gzipSync(code, { level: 9 }).byteLength }
}

const event = (i: number, campaignId: string) => ({
  adId: 'ad_1', campaignId, requestId: `req_${i}`, impressionId: `imp_${campaignId}_${i}`, placement: 'feed_top',
  ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  ip: `81.${(i >> 8) & 255}.${i & 255}.9`,
})

interface Wire {
  requests: number
  bodyBytes: number
  headerBytes: number
}

/** Counts what goes on the wire: bodies exactly, headers as `name: value\r\n` plus the request line. */
function counting(wire: Wire): FetchLike {
  return async (url, init) => {
    wire.requests++
    wire.bodyBytes += Buffer.byteLength(init.body)
    wire.headerBytes += `POST ${new URL(url).pathname}${new URL(url).search} HTTP/1.1\r\n`.length
      + Object.entries(init.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0)
    return fetch(url, init)
  }
}

/** Sends `total` impressions through one client and waits until the queue is empty. */
async function drive(opts: { endpoint: string; publisherId: string; auth: Auth; campaignId: string; total: number; flushAt: number; storage?: QueueStorage }) {
  const wire: Wire = { requests: 0, bodyBytes: 0, headerBytes: 0 }
  let dropped = 0
  const client = createClient({
    endpoint: opts.endpoint, publisherId: opts.publisherId, auth: opts.auth, flushAt: opts.flushAt, flushBytes: 1e12, flushIntervalMs: 0,
    maxQueueEvents: opts.total, defaults: { channel: 'app', device: 'mobile', geo: 'US' }, lifecycle: [], fetch: counting(wire),
    backoff: { baseMs: 50, maxMs: 1000 }, onRejected: () => dropped++, ...(opts.storage ? { storage: opts.storage } : {}),
  })
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  // As an app does: fire and forget, the queue coalesces its writes.
  const queued: Promise<string>[] = []
  for (let i = 0; i < opts.total; i++) {
    queued.push(client.impression(event(i, opts.campaignId)))
    if (i % 1000 === 999) await Promise.all(queued.splice(0))
  }
  await Promise.all(queued)
  for (;;) {
    const r = await client.flush()
    if (r.pending === 0) break
    await new Promise((done) => setTimeout(done, r.retryInMs ?? 10))
  }
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await client.shutdown()
  const stats = client.stats()
  return {
    events: opts.total, delivered: stats.delivered, dropped, seconds: +seconds.toFixed(2),
    eventsPerSecond: Math.round(stats.delivered / seconds),
    eventsPerCpuSecond: Math.round(stats.delivered / ((cpu.user + cpu.system) / 1e6)),
    requests: wire.requests,
    bodyBytesPerEvent: +(wire.bodyBytes / opts.total).toFixed(1),
    headerBytesPerEvent: +(wire.headerBytes / opts.total).toFixed(2),
  }
}

/** A loopback server in its own process that answers every batch `accepted`, so only the SDK's cost is measured here. */
async function nullEdge(): Promise<{ url: string; stop: () => void }> {
  const script = `
    const http = require('node:http')
    const s = http.createServer((req, res) => {
      const chunks = []
      req.on('data', (c) => chunks.push(c))
      req.on('end', () => {
        const n = JSON.parse(Buffer.concat(chunks).toString()).events.length
        const results = Array.from({ length: n }, (_, index) => ({ index, status: 'accepted' }))
        res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ received: n, accepted: n, duplicate: 0, rejected: 0, results }))
      })
    })
    s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'))`
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  return { url: `http://127.0.0.1:${line.toString().trim()}`, stop: () => child.kill() }
}

export async function runSdkBench(opts: { events?: number } = {}) {
  const total = opts.events ?? Number(process.env.BENCH_SDK_EVENTS ?? 20_000)
  const sdk = join(ROOT, 'sdk/js/src/index.ts')
  const bundle = {
    browserClient: await bundleSize(`export { createClient, localStorageStorage } from ${JSON.stringify(sdk)}`),
    wholeEntry: await bundleSize(`export * from ${JSON.stringify(sdk)}`),
  }

  const local = await nullEdge()
  let sdkOnly
  try {
    sdkOnly = {
      signed: await drive({ endpoint: local.url, publisherId: 'pub_bench', auth: { keyId: 'k', secret: 's' }, campaignId: 'cmp_bench', total, flushAt: 500 }),
      beacon: await drive({ endpoint: local.url, publisherId: 'pub_bench', auth: { publicKey: 'pk_bench' }, campaignId: 'cmp_bench', total, flushAt: 20 }),
      signedFileQueue: await drive({
        endpoint: local.url, publisherId: 'pub_bench', auth: { keyId: 'k', secret: 's' }, campaignId: 'cmp_bench', total, flushAt: 500,
        storage: fileStorage(join(mkdtempSync(join(tmpdir(), 'adc-sdk-bench-')), 'queue.json')),
      }),
    }
  } finally {
    local.stop()
  }

  const core = await startCore({ LOG_LEVEL: 'error', ...BENCH_API_LIMIT })
  const edge = await startEdge(core)
  let realEdge
  try {
    const runId = Math.random().toString(36).slice(2, 8)
    const post = (path: string, body: unknown) => fetch(`${core.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const created = (await (await post('/v1/admin/publishers', { id: `pub_sdk_${runId}`, name: 'sdk bench', rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } })).json()) as { apiKey: string; requestSigningKeyId: string; requestSigningSecret: string }
    const pub = created
    const key = { keyId: created.requestSigningKeyId, signingSecret: created.requestSigningSecret }
    for (const id of [`cmp_sdk_${runId}`, `cmp_sdk2_${runId}`]) await post('/v1/admin/campaigns', { id, advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 1000 } })
    await new Promise((r) => setTimeout(r, 2000))
    realEdge = {
      signedBatchesOf500: await drive({ endpoint: edge.url, publisherId: `pub_sdk_${runId}`, auth: { keyId: key.keyId, secret: key.signingSecret }, campaignId: `cmp_sdk_${runId}`, total, flushAt: 500 }),
      serverKeyFlushAt20: await drive({ endpoint: edge.url, publisherId: `pub_sdk_${runId}`, auth: { serverKey: pub.apiKey }, campaignId: `cmp_sdk2_${runId}`, total: Math.min(total, 5000), flushAt: 20 }),
    }
  } finally {
    await edge.stop()
    await core.stop()
  }
  return { bundle, sdkOnly, realEdge }
}

if (process.argv[1] === import.meta.filename) {
  console.log(JSON.stringify(await runSdkBench(), null, 2))
  process.exit(0)
}
