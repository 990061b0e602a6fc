/**
 * Processor throughput and delay, in one run on this machine:
 * - events per second per core through the full pipeline (decode, dedupe, join, IVT, ClickHouse
 *   sinks on chDB), next to a baseline that only JSON-parses the same log records, and their ratio
 *   ("per core" = events per CPU-second of the whole process, chDB's threads included);
 * - memory and bytes on disk per deduplicated key (LMDB B-tree pages / keys);
 * - delay from log append to the rollup being visible in ClickHouse, p50 and p99.
 *
 *   node --max-semi-space-size=512 --expose-gc --import tsx bench/processor-bench.ts  (the core's V8 flags, core/src/node-flags.ts)
 *
 * Env: PROCESSOR_BENCH_EVENTS (100000), PROCESSOR_BENCH_PARTITIONS (4), PROCESSOR_BENCH_BATCH (20000, the processor's default),
 * PROCESSOR_BENCH_ICEBERG=1 also writes the Iceberg raw table, PROCESSOR_BENCH_PROBES (100),
 * PROCESSOR_BENCH_SERVER=1 writes to a ClickHouse server in a process of its own instead of chDB in
 * this one (the HTTP stand-in over the compose stack's ClickHouse version, scripts/clickhouse/ensure.sh
 * installs it): the figures are then the processor's own CPU, the engine's reported beside them;
 * with PROCESSOR_BENCH_ICEBERG=1 too, the lake is on S3 (moto's S3 server on loopback, as MinIO in
 * the compose stack) and the server writes its data files,
 * PROCESSOR_BENCH_PIN=0 lets the server's processes share this one's CPUs (by default, with a server, this
 * process runs on CPU 0 and they on the others: `taskset`),
 * PROCESSOR_BENCH_WARMUP (events of the same traffic through the same processor first: by default five
 * batches per partition, 400000 at the defaults, the last batch of each partition after the forced
 * garbage collection that sets the heap's starting point, REWARM_BATCHES; 0 measures from a cold start),
 * PROCESSOR_BENCH_SPACING_MS (20: event time between two impressions; from about 330 the measured
 * run expires state as it adds it), PROCESSOR_BENCH_TIMED_IDS (1: event ids carry their event's time;
 * 0: one time for all, the bench's traffic before ids carried their time), PROCESSOR_BENCH_RANDOM_IDS=1 (impression ids as
 * UUIDs, whose keys sort randomly, instead of `imp_<seed>_<n>`),
 * PROCESSOR_BENCH_MARK=1 prints a line where the measured run starts and one where it ends (to cut a
 * `--trace-opt`/`--trace-deopt` log to the measured run),
 * PROCESSOR_BENCH_PROFILE=<file.cpuprofile> writes a CPU profile of the pipeline run only (not the setup,
 * the baseline or the probes). PROCESSOR_BENCH_HEAP_PROFILE=<file.heapprofile>: a sampling heap profile of
 * the same run that keeps the objects garbage collection freed too, so it shows what each function
 * allocates, not only what survives (open it in Chrome DevTools' Memory tab). PROCESSOR_BENCH_READY=<file>: once warmed up, writes this process's pid
 * there and waits 1.5 s before the measured run, for an outside profiler (`perf record -p`) to attach.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { PerformanceObserver, performance as perf } from 'node:perf_hooks'
import { pino } from 'pino'
import { createClickHouse, migrate, type ClickHouseClient } from '../core/src/clickhouse/client.js'
import { createEmbeddedLog } from '../core/src/log/embedded-log.js'
import type { Log } from '../core/src/log/log.js'
import { createMetricsRegistry } from '../core/src/metrics/registry.js'
import { createProcessor } from '../core/src/processor/processor.js'
import { CORE_NODE_FLAGS } from '../core/src/node-flags.js'
import { startClickHouseStandIn, type ClickHouseStandIn } from '../core/src/clickhouse/pinned/stand-in.js'
import { execFileSync } from 'node:child_process'
import { startMoto } from '../core/src/testing/moto.js'
import { testEnvelope, toRecord, trafficMix } from '../core/src/testing/events.js'
import { PartitionStore } from '../core/src/state/partition-store.js'

export interface ProcessorBenchOptions {
  /** Log records through the pipeline. @default 100_000 */
  events?: number
  /** @default 4 */
  partitions?: number
  /** Records per batch. @default 20000 (the processor's default) */
  batch?: number
  /** Also write the Iceberg raw table. @default false */
  iceberg?: boolean
  /** Append-to-visible probes. @default 100 */
  probes?: number
  /**
   * Write to a ClickHouse server in its own process (the HTTP stand-in) instead of chDB in this one:
   * `pipeline` is then the processor alone, and `engine` the server's CPU. @default false
   */
  server?: boolean
  /**
   * Event time between two impressions of the traffic (testing/events.ts `trafficMix`). At the
   * default the whole run spans about two hours, so no state expires in it; from about 330 ms the
   * warm-up spans the state's 25 h and the measured run deletes expired keys as it adds new ones,
   * as a processor does in its steady state. @default 20
   */
  spacingMs?: number
  /** Event ids carry their event's time, as clients' ULIDs do (false: every id one time, the bench's traffic before ids carried their time). @default true */
  timedIds?: boolean
  /** Impression ids that sort randomly (UUIDs, as many ad servers send) instead of nearly in arrival order (testing/events.ts `trafficMix`). @default false */
  randomImpressionIds?: boolean
  /**
   * With `server`, on Linux with two CPUs or more: this process runs on CPU 0 and the server and S3
   * processes on the others (`taskset`), as they would on machines of their own, so the engine's
   * work never shares the processor's core and its caches. @default true
   */
  pin?: boolean
  /** Writes a CPU profile of the pipeline run (only) to this file. */
  profile?: string
  /** Writes a sampling heap profile of the pipeline run (only) to this file: every allocation sampled, freed or not. */
  heapProfile?: string
  /**
   * Events through the same processor before the measured ones (the first records of the same
   * traffic), so the measured run is its steady state: code compiled and settled by the JIT, stores
   * open, state in place (its last REWARM_BATCHES per partition run after the forced collection that
   * sets the heap's starting point). 0 measures from a cold start. @default WARMUP_BATCHES batches per partition
   */
  warmup?: number
}

export interface ProcessorBenchFigures {
  events: number
  /** Events through the same processor before the measured ones (0: measured from a cold start). */
  warmup: number
  baseline: { seconds: number; cpuSeconds: number; eventsPerSecond: number; eventsPerCpuSecond: number }
  /**
   * `userSeconds`, `systemSeconds`: `cpuSeconds` in user space and in the kernel (LMDB's page faults and writes, sockets).
   * `mainThreadSeconds`: event-loop busy time (the JS pipeline); the rest of the CPU is chDB's threads
   * and LMDB. `threadSeconds`: CPU seconds per thread name (from /proc on Linux: the main thread is
   * `main`, chDB's pools have their own names, V8's helpers and libuv's pool are `node`). `gcSeconds`: time in garbage collection pauses (PerformanceObserver 'gc') during the run.
   */
  pipeline: { seconds: number; cpuSeconds: number; userSeconds: number; systemSeconds: number; mainThreadSeconds: number; threadSeconds: Record<string, number>; gcSeconds: number; eventsPerSecond: number; eventsPerCpuSecond: number; iceberg: boolean }
  /** Whether this process ran on CPU 0 and the server's processes on the others (`pin`). */
  pinned: boolean
  /** pipeline / baseline, per CPU-second. */
  ratio: number
  /** With `server`: the ClickHouse server's process (HTTP stand-in) over the measured run; its work is not in `pipeline`. */
  engine?: { kind: string; cpuSeconds: number; cpuMicrosPerEvent: number }
  /**
   * `diskBytesPerKey`: the delivery dedupe database's B-tree pages per delivery key (state/delivery-index.ts);
   * `impressionState`: the main database (impression ids' dedupe and join state, waiting clicks, join
   * deadlines, the impression keys' expiry schedule) per impression id and per delivery key;
   * `burstCounters`: the IVT counters' database (state/burst-counters.ts) as the run left it;
   * `allStateBytesPerKey`: everything on disk per delivery key.
   */
  dedupe: {
    keys: number
    diskBytesPerKey: number
    impressionState: { keys: number; bytesPerKey: number; bytesPerDeliveryKey: number }
    burstCounters: { keys: number; bytes: number }
    allStateBytesPerKey: number
    heapBytesPerKey: number
    rssBytesPerKey: number
  }
  delayMs: { p50: number; p99: number; max: number; probes: number }
}

const silent = pino({ level: 'silent' })

/** Sets the CPUs every thread of `pid` may run on (Linux `taskset`); false where that is not possible. */
function pinTo(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** CPU seconds per thread name of this process, from /proc (Linux; empty elsewhere). */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>()
  let tasks: string[] = []
  try {
    tasks = readdirSync('/proc/self/task')
  } catch {
    return out
  }
  for (const t of tasks) {
    try {
      const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '')
      const name = t === String(process.pid) ? 'main' : comm === 'node' ? 'node (V8 GC and compiler helpers, libuv pool: chDB calls, LMDB)' : comm
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100)
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out
}

function threadCpuDelta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const d: Record<string, number> = {}
  for (const [k, v] of after) {
    const x = v - (before.get(k) ?? 0)
    if (x > 0.005) d[k] = x
  }
  return Object.fromEntries(Object.entries(d).sort((a, b) => b[1] - a[1]))
}
const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0
}

/**
 * Batches per partition the default warm-up runs. Code that runs once per batch (the commit, the
 * sweeps, the sinks' writes) is hot only after a few batches; measured with `--trace-opt` over the
 * measured run alone (PROCESSOR_BENCH_MARK, 160k events against a server): after a 50k-event warm-up
 * (under one batch per partition) TurboFan still compiled 517–715 ms in it, after five batches per
 * partition 225 ms. A processor runs for days: the figure that matters is the steady state.
 */
export const WARMUP_BATCHES = 5

/**
 * Batches per partition of the warm-up that run after the forced garbage collection taken before the
 * measured run (the heap's starting point). That collection frees the warm-up's dead objects, and
 * V8 throws away the optimised code that held any of them (`--trace-deopt`: "marking dependent code
 * … for deoptimization, reason: weak objects", 48 functions, the event worker's build, the RowBinary
 * writer and the log's read among them); without these batches the measured run paid for compiling
 * them all again, 0.40–0.45 s of TurboFan in a 160k-event run (about 2.5 µs per event), a cost of the
 * bench's own collection that a running processor does not have in every 160k events.
 */
export const REWARM_BATCHES = 1

export const defaultWarmup = (partitions: number, batch: number): number => WARMUP_BATCHES * partitions * batch

async function sumCommitted(log: Log, group: string, topic: string): Promise<number> {
  return [...(await log.committedOffsets(group, topic)).values()].reduce((a, b) => a + b, 0)
}

/**
 * The baseline: the same log records through the same log consumer, each only JSON-parsed. Measured
 * as the pipeline is, in its steady state: over the records after the first `warmup` (the pipeline's
 * warm-up records), after a forced collection, so neither the JIT's first compiles nor the young
 * generation's first touch of its pages (page faults, which a larger young generation makes dearer)
 * count against it.
 */
async function baselineParse(log: Log, total: number, batch: number, warmup: number): Promise<ProcessorBenchFigures['baseline']> {
  let seen = 0
  let sink = 0
  let measuredFrom = warmup > 0 ? -1 : 0
  let cpu0 = process.cpuUsage()
  let t0 = performance.now()
  let done!: () => void
  const finished = new Promise<void>((r) => (done = r))
  global.gc?.()
  const consumer = await log.consume({
    groupId: 'bench-baseline', topic: 'ad-events', maxBatchRecords: batch,
    async onBatch(b, ctx) {
      for (const r of b.records) sink += (JSON.parse(r.value) as { receivedAt: number }).receivedAt & 1
      seen += b.records.length
      ctx.resolveOffset(b.records[b.records.length - 1]!.offset)
      await ctx.commit()
      if (measuredFrom < 0 && seen >= warmup) {
        // The measured part starts at this batch boundary.
        measuredFrom = seen
        cpu0 = process.cpuUsage()
        t0 = performance.now()
      }
      if (seen >= total) done()
    },
  })
  await finished
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuSeconds(process.cpuUsage(cpu0))
  await consumer.stop()
  if (sink < 0) console.log(sink)
  const measured = seen - measuredFrom
  return { seconds, cpuSeconds: cpu, eventsPerSecond: measured / seconds, eventsPerCpuSecond: measured / cpu }
}

async function rollupCampaigns(ch: ClickHouseClient, db: string): Promise<Set<string>> {
  const rows = await (await ch.query({ query: `SELECT DISTINCT campaign_id FROM ${db}.rollup_minute WHERE campaign_id LIKE 'cmp_probe_%'`, format: 'JSONEachRow' })).json<{ campaign_id: string }>()
  return new Set(rows.map((r) => r.campaign_id))
}

/**
 * The log as the measured processor sees it: until `open()`, each partition is delivered only up to
 * the offset `warmupEnd` gives it, and after `until(end)` up to `end`'s (a batch reaching past it is
 * cut there; one wholly past it is declined, and the log offers it again after a short pause). So
 * the warm-up runs, in stages, through the very processor,
 * stores and database handles that are then measured, and the measurement starts on a batch boundary.
 */
function gatedLog(log: Log, warmupEnd: ReadonlyMap<number, number>): { log: Log; open(): void; until(end: ReadonlyMap<number, number>): void } {
  let opened = false
  let limit = warmupEnd
  const gated: Log = Object.create(log) as Log
  gated.consume = (options) => log.consume({
    ...options,
    async onBatch(batch, ctx) {
      if (opened || options.topic !== 'ad-events') return options.onBatch(batch, ctx)
      const end = limit.get(batch.partition) ?? -1
      const head = batch.records.filter((r) => r.offset <= end)
      if (head.length > 0) await options.onBatch({ ...batch, records: head }, ctx)
    },
  })
  return { log: gated, open: () => (opened = true), until: (end) => (limit = end) }
}

export async function runProcessorBench(options: ProcessorBenchOptions = {}): Promise<ProcessorBenchFigures> {
  const { events = 100_000, partitions = 4, batch = 20_000, iceberg = false, probes = 100, profile, heapProfile, server = false } = options
  const warmup = options.warmup ?? defaultWarmup(partitions, batch)
  const { spacingMs = 20, timedIds = true, randomImpressionIds = false } = options
  const root = mkdtempSync(join(tmpdir(), 'adc-processor-bench-'))
  const lake = join('.cache', `bench-lake-${process.pid}`)
  const log = await createEmbeddedLog({ dir: join(root, 'log'), logger: silent })
  let standIn: ClickHouseStandIn | undefined
  // A lake with a server: on S3 (moto's server on loopback, scripts/s3/ensure.sh installs it).
  const moto = server && iceberg ? await startMoto(['warehouse']) : undefined
  if (server) {
    const python = execFileSync('bash', [join(import.meta.dirname, '../scripts/clickhouse/ensure.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
    standIn = await startClickHouseStandIn(python, join(root, 'server'))
  }
  const cpus = availableParallelism()
  // The servers first: this process is held to CPU 0 only once they are off it.
  const others = `1-${cpus - 1}`
  const pinned = server && (options.pin ?? true) && cpus >= 2 && pinTo(standIn!.pid, others) && (!moto || pinTo(moto.pid, others)) && pinTo(process.pid, '0')
  const ch = standIn ? createClickHouse({ url: standIn.url, dataDir: join(root, 'chdb') }) : createClickHouse({ dataDir: join(root, 'chdb') })
  const db = 'adc_bench'
  try {
    await migrate(ch, db)
    await log.ensureTopic('ad-events', partitions)
    await log.ensureTopic('edge-stats', 1)
    // One stream of traffic: the first `warmup` records warm the processor up, the rest are measured.
    // It ends about now: an event's time is never ahead of the clock.
    const start = Date.now() - 60 * 60_000 - (warmup + events) * spacingMs
    let { records } = trafficMix(warmup + events, { start, spacingMs, timedIds, randomImpressionIds })
    const warmupEnd = new Map<number, number>()
    // The warm-up before the forced collection; the rest of it (REWARM_BATCHES per partition) after.
    const rewarm = Math.min(warmup, REWARM_BATCHES * partitions * batch)
    const firstWarmupEnd = new Map<number, number>()
    for (let i = 0; i < records.length; i += 5000) {
      const appended = await log.append('ad-events', records.slice(i, Math.min(i + 5000, records.length)))
      appended.forEach((a, j) => {
        if (i + j < warmup) warmupEnd.set(a.partition, Math.max(warmupEnd.get(a.partition) ?? -1, a.offset))
        if (i + j < warmup - rewarm) firstWarmupEnd.set(a.partition, Math.max(firstWarmupEnd.get(a.partition) ?? -1, a.offset))
      })
    }
    const total = records.length
    // The generated records are in the log now: dropped here, so the measured process does not carry
    // them (about 700 bytes each) through every full garbage collection.
    records = []

    const baseline = await baselineParse(log, total, batch, warmup)

    const stateDir = join(root, 'state')
    const gate = gatedLog(log, firstWarmupEnd)
    const processor = createProcessor({
      log: gate.log, clickhouse: ch, database: db, stateDir, groupId: 'bench', logger: silent,
      registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords: batch, ...(iceberg ? { icebergDir: lake } : {}),
      // With a server, the lake is on S3 (as in the compose stack), whose data files the server writes.
      ...(iceberg && moto ? { iceberg: { s3: { endpoint: moto.endpoint, accessKeyId: 'adc', secretAccessKey: 'adc_secret' }, warehouse: 's3://warehouse/bench' } } : {}),
    })
    await processor.start()
    while ((await sumCommitted(log, 'bench', 'ad-events')) < warmup - rewarm) await new Promise((r) => setTimeout(r, 10))
    global.gc?.()
    const heap0 = process.memoryUsage().heapUsed
    const rss0 = process.memoryUsage().rss
    // The code the collection threw away is compiled again on the warm-up's last batches (REWARM_BATCHES).
    gate.until(warmupEnd)
    while ((await sumCommitted(log, 'bench', 'ad-events')) < warmup) await new Promise((r) => setTimeout(r, 10))
    const inspector = profile || heapProfile ? new Session() : undefined
    if (inspector) inspector.connect()
    if (inspector && profile) {
      await inspector.post('Profiler.enable')
      await inspector.post('Profiler.start')
    }
    if (inspector && heapProfile) {
      await inspector.post('HeapProfiler.enable')
      // Objects a scavenge or a full collection freed stay in the profile: it shows allocation, not survivors.
      await inspector.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
    }
    let gcMs = 0
    const gcs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcMs += e.duration
    })
    gcs.observe({ entryTypes: ['gc'] })
    const threads0 = threadCpu()
    const engine0 = standIn?.cpuSeconds() ?? 0
    const cpu0 = process.cpuUsage()
    const elu0 = perf.eventLoopUtilization()
    const t0 = performance.now()
    if (process.env.PROCESSOR_BENCH_READY) {
      // An outside profiler (perf record -p) attaches here: the file names this process once the warm-up is done.
      writeFileSync(process.env.PROCESSOR_BENCH_READY, String(process.pid))
      await new Promise((r) => setTimeout(r, 1500))
    }
    if (process.env.PROCESSOR_BENCH_MARK) console.log('--- measured run: start ---')
    gate.open()
    while ((await sumCommitted(log, 'bench', 'ad-events')) < total) await new Promise((r) => setTimeout(r, 10))
    if (process.env.PROCESSOR_BENCH_MARK) console.log('--- measured run: end ---')
    const seconds = (performance.now() - t0) / 1000
    const cpuUsed = process.cpuUsage(cpu0)
    const cpu = cpuSeconds(cpuUsed)
    const engineSeconds = (standIn?.cpuSeconds() ?? 0) - engine0
    const mainThreadSeconds = perf.eventLoopUtilization(elu0).active / 1000
    const threadSeconds = threadCpuDelta(threads0, threadCpu())
    await new Promise((r) => setImmediate(r)) // the last gc entries are delivered asynchronously
    gcs.disconnect()
    if (inspector && profile) {
      const { profile: taken } = await inspector.post('Profiler.stop')
      writeFileSync(profile, JSON.stringify(taken))
    }
    if (inspector && heapProfile) {
      const { profile: taken } = await inspector.post('HeapProfiler.stopSampling')
      writeFileSync(heapProfile, JSON.stringify(taken))
    }
    inspector?.disconnect()
    global.gc?.()
    const heapDelta = process.memoryUsage().heapUsed - heap0
    const rssDelta = process.memoryUsage().rss - rss0

    // Append → visible: probes with their own campaign, each appended alone, while the processor runs.
    const delays: number[] = []
    const t = Date.now()
    for (let i = 0; i < probes; i++) {
      const env = testEnvelope({ type: 'impression', n: 90_000_000 + i, impressionId: `imp_probe_${i}`, ts: t, receivedAt: t, campaignId: `cmp_probe_${i}` })
      const appendedAt = performance.now()
      await log.append('ad-events', [toRecord(env)])
      for (;;) {
        if ((await rollupCampaigns(ch, db)).has(`cmp_probe_${i}`)) break
        await new Promise((r) => setTimeout(r, 2))
      }
      delays.push(performance.now() - appendedAt)
    }
    await processor.stop()

    let keys = 0
    let used = 0
    let impressionKeys = 0
    let otherUsed = 0
    let burstKeys = 0
    let burstUsed = 0
    for (let p = 0; p < partitions; p++) {
      const s = PartitionStore.open(join(stateDir, 'ad-events', `p${p}`), p)
      const d = s.deliveries.stats()
      keys += d.keys
      used += d.usedBytes
      const imp = s.impressions.stats()
      impressionKeys += imp.keys
      otherUsed += s.stats().usedBytes + imp.usedBytes
      burstKeys += s.bursts.stats().keys
      burstUsed += s.bursts.stats().usedBytes
      await s.close()
    }
    return {
      events,
      warmup,
      baseline,
      pipeline: { seconds, cpuSeconds: cpu, userSeconds: cpuUsed.user / 1e6, systemSeconds: cpuUsed.system / 1e6, mainThreadSeconds, threadSeconds, gcSeconds: gcMs / 1000, eventsPerSecond: events / seconds, eventsPerCpuSecond: events / cpu, iceberg },
      pinned,
      ratio: events / cpu / baseline.eventsPerCpuSecond,
      ...(standIn ? { engine: { kind: 'ClickHouse HTTP stand-in (Python over chDB of the compose stack\'s version), its own process', cpuSeconds: engineSeconds, cpuMicrosPerEvent: (engineSeconds * 1e6) / events } } : {}),
      dedupe: {
        keys,
        diskBytesPerKey: used / keys,
        impressionState: { keys: impressionKeys, bytesPerKey: otherUsed / impressionKeys, bytesPerDeliveryKey: otherUsed / keys },
        burstCounters: { keys: burstKeys, bytes: burstUsed },
        allStateBytesPerKey: (used + otherUsed + burstUsed) / keys,
        heapBytesPerKey: Math.max(0, heapDelta) / keys, rssBytesPerKey: Math.max(0, rssDelta) / keys },
      delayMs: { p50: pct(delays, 50), p99: pct(delays, 99), max: Math.max(...delays), probes },
    }
  } finally {
    await log.close()
    await ch.close()
    await standIn?.stop()
    moto?.stop()
    rmSync(root, { recursive: true, force: true })
    rmSync(lake, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const env = process.env
  const missing = CORE_NODE_FLAGS.filter((f) => !process.execArgv.includes(f))
  if (missing.length > 0) console.warn(`measuring without the core's V8 flags (core/src/node-flags.ts): run with ${missing.join(' ')}`)
  const figures = await runProcessorBench({
    events: Number(env.PROCESSOR_BENCH_EVENTS ?? 100_000),
    partitions: Number(env.PROCESSOR_BENCH_PARTITIONS ?? 4),
    batch: Number(env.PROCESSOR_BENCH_BATCH ?? 20_000),
    iceberg: env.PROCESSOR_BENCH_ICEBERG === '1',
    server: env.PROCESSOR_BENCH_SERVER === '1',
    pin: env.PROCESSOR_BENCH_PIN !== '0',
    probes: Number(env.PROCESSOR_BENCH_PROBES ?? 100),
    ...(env.PROCESSOR_BENCH_WARMUP !== undefined ? { warmup: Number(env.PROCESSOR_BENCH_WARMUP) } : {}),
    ...(env.PROCESSOR_BENCH_SPACING_MS !== undefined ? { spacingMs: Number(env.PROCESSOR_BENCH_SPACING_MS) } : {}),
    timedIds: env.PROCESSOR_BENCH_TIMED_IDS !== '0',
    randomImpressionIds: env.PROCESSOR_BENCH_RANDOM_IDS === '1',
    ...(env.PROCESSOR_BENCH_PROFILE ? { profile: env.PROCESSOR_BENCH_PROFILE } : {}),
    ...(env.PROCESSOR_BENCH_HEAP_PROFILE ? { heapProfile: env.PROCESSOR_BENCH_HEAP_PROFILE } : {}),
  })
  const r = (n: number): number => Math.round(n)
  console.log(JSON.stringify(figures, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 100) / 100 : v), 2))
  console.log(`pipeline ${r(figures.pipeline.eventsPerCpuSecond)} events/s per core (${r(figures.pipeline.eventsPerSecond)} events/s wall; ${((figures.pipeline.cpuSeconds * 1e6) / figures.events).toFixed(1)} µs CPU per event, ${((figures.pipeline.gcSeconds * 1e6) / figures.events).toFixed(1)} µs of it GC) vs JSON.parse baseline ${r(figures.baseline.eventsPerCpuSecond)} events/s per core: ratio ${figures.ratio.toFixed(3)}; ${figures.dedupe.diskBytesPerKey.toFixed(0)} B on disk per delivery dedupe key, impression state ${figures.dedupe.impressionState.bytesPerKey.toFixed(0)} B per impression id (all state ${figures.dedupe.allStateBytesPerKey.toFixed(0)} B per delivery key); append→rollup visible p50 ${figures.delayMs.p50.toFixed(0)} ms, p99 ${figures.delayMs.p99.toFixed(0)} ms${figures.engine ? `; the ClickHouse server's process ${figures.engine.cpuMicrosPerEvent.toFixed(1)} µs CPU per event besides` : ''}`)
}
