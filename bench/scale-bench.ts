/**
 * Processor throughput on a real Kafka broker with one and with two consumers (processors) in the
 * same group, and the cost of the state changelog that lets partitions move between them:
 * - `one`: one processor, state local only;
 * - `oneChangelog`: one processor with the state changelog (`adc-state-changelog`) on;
 * - `twoChangelog`: two processors (separate Kafka clients, group members and state directories)
 *   sharing the partitions, changelog on.
 * Every run reads the same pre-produced records from its own topics into its own ClickHouse database
 * (one chDB in this process: chDB allows one process per data directory, so both processors run
 * here, on one event loop; on separate machines each would have its own cores).
 *
 *   export $(bash scripts/kafka/start.sh | tail -1); node --import tsx bench/scale-bench.ts
 *
 * Env: KAFKA_BROKERS (required), SCALE_BENCH_EVENTS (100000), SCALE_BENCH_PARTITIONS (4),
 * SCALE_BENCH_BATCH (20000, the processor default).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { pino } from 'pino'
import { createClickHouse, migrate, type ClickHouseClient } from '../core/src/clickhouse/client.js'
import { createKafkaLog } from '../core/src/log/kafka-log.js'
import type { Log } from '../core/src/log/log.js'
import { createMetricsRegistry } from '../core/src/metrics/registry.js'
import { createProcessor, type Processor } from '../core/src/processor/processor.js'
import { trafficMix } from '../core/src/testing/events.js'

export interface ScaleBenchOptions {
  brokers: string[]
  /** @default 100_000 */
  events?: number
  /** @default 4 */
  partitions?: number
  /** @default 5000 */
  batch?: number
}

export interface ScaleRun {
  processors: number
  changelog: boolean
  seconds: number
  cpuSeconds: number
  eventsPerSecond: number
  eventsPerCpuSecond: number
  /** Exactness check: billable impressions + clicks + duplicates in the rollups. */
  counted: number
  expected: number
}

export interface ScaleBenchFigures {
  events: number
  partitions: number
  produce: { seconds: number; eventsPerSecond: number }
  one: ScaleRun
  oneChangelog: ScaleRun
  twoChangelog: ScaleRun
}

const silent = pino({ level: process.env.LOG_LEVEL ?? 'silent' })
const newLog = (brokers: string[], name: string): Promise<Log> =>
  createKafkaLog({ brokers, clientId: `adc-scale-bench-${name}`, logger: silent, consumer: { heartbeatInterval: 500, sessionTimeout: 10_000, maxWaitTimeInMs: 100 } })

async function runOnce(o: Required<ScaleBenchOptions>, ch: ClickHouseClient, root: string, run: string, processors: number, changelog: boolean, expected: number, source: { events: string; produced: number }): Promise<ScaleRun> {
  const db = `adc_scale_${run}`.replace(/-/g, '_')
  await migrate(ch, db)
  const admin = await newLog(o.brokers, `${run}-admin`)
  const group = `scale-${run}`
  const logs: Log[] = []
  const procs: Processor[] = []
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  try {
    for (let i = 0; i < processors; i++) {
      const log = await newLog(o.brokers, `${run}-${i}`)
      logs.push(log)
      const p = createProcessor({
        log, clickhouse: ch, database: db, stateDir: join(root, run, `p${i}`), groupId: group, logger: silent,
        registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords: o.batch, topicPartitions: o.partitions,
        topics: { events: source.events, edgeStats: `edge-stats-${run}` },
        ...(changelog ? { changelog: { topic: `adc-state-changelog-${run}` } } : {}),
      })
      procs.push(p)
    }
    await Promise.all(procs.map((p) => p.start()))
    for (;;) {
      const done = [...(await admin.committedOffsets(group, source.events)).values()].reduce((a, b) => a + b, 0)
      if (done >= source.produced) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const seconds = (performance.now() - t0) / 1000
    const u = process.cpuUsage(cpu0)
    const cpuSeconds = (u.user + u.system) / 1e6
    const [row] = await (await ch.query({ query: `SELECT sum(impressions) + sum(clicks) + sum(duplicates) n FROM ${db}.rollup_minute`, format: 'JSONEachRow' })).json<{ n: string }>()
    return { processors, changelog, seconds, cpuSeconds, eventsPerSecond: source.produced / seconds, eventsPerCpuSecond: source.produced / cpuSeconds, counted: Number(row?.n ?? 0), expected }
  } finally {
    for (const p of procs) await p.stop()
    for (const l of logs) await l.close()
    await admin.close()
  }
}

export async function runScaleBench(options: ScaleBenchOptions): Promise<ScaleBenchFigures> {
  const o: Required<ScaleBenchOptions> = { events: 100_000, partitions: 4, batch: 5000, ...options }
  const root = mkdtempSync(join(tmpdir(), 'adc-scale-bench-'))
  const ch = createClickHouse({ dataDir: join(root, 'chdb') })
  const id = Math.random().toString(36).slice(2, 8)
  const producer = await newLog(o.brokers, `${id}-producer`)
  try {
    const { records, expected } = trafficMix(o.events, { start: Date.now() - 60 * 60_000 })
    const want = expected.impressions + expected.clicks + expected.duplicates
    // One source topic per run, with the same records: each run starts from an unread topic.
    const runs = ['one', 'onecl', 'twocl'].map((r) => `${id}-${r}`)
    let produceSeconds = 0
    for (const run of runs) {
      await producer.ensureTopic(`ad-events-${run}`, o.partitions)
      const t0 = performance.now()
      // Sequential appends of 1000: the adapter sends concurrent appends as one request, and Kafka
      // refuses a partition batch over 1 MiB.
      for (let i = 0; i < records.length; i += 1000) await producer.append(`ad-events-${run}`, records.slice(i, i + 1000))
      produceSeconds += (performance.now() - t0) / 1000
    }
    const src = (run: string) => ({ events: `ad-events-${run}`, produced: records.length })
    const one = await runOnce(o, ch, root, runs[0]!, 1, false, want, src(runs[0]!))
    const oneChangelog = await runOnce(o, ch, root, runs[1]!, 1, true, want, src(runs[1]!))
    const twoChangelog = await runOnce(o, ch, root, runs[2]!, 2, true, want, src(runs[2]!))
    return { events: records.length, partitions: o.partitions, produce: { seconds: produceSeconds / runs.length, eventsPerSecond: (records.length * runs.length) / produceSeconds }, one, oneChangelog, twoChangelog }
  } finally {
    await producer.close()
    await ch.close()
    rmSync(root, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const brokers = process.env.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter(Boolean) ?? []
  if (brokers.length === 0) {
    console.error('KAFKA_BROKERS is unset: start a broker with `export $(bash scripts/kafka/start.sh | tail -1)`')
    process.exit(2)
  }
  const env = process.env
  const f = await runScaleBench({
    brokers,
    events: Number(env.SCALE_BENCH_EVENTS ?? 100_000),
    partitions: Number(env.SCALE_BENCH_PARTITIONS ?? 4),
    batch: Number(env.SCALE_BENCH_BATCH ?? 20000),
  })
  console.log(JSON.stringify(f, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 100) / 100 : v), 2))
  const line = (name: string, r: ScaleRun): string => `${name}: ${Math.round(r.eventsPerSecond)} events/s wall, ${Math.round(r.eventsPerCpuSecond)} per CPU-second${r.counted === r.expected ? '' : ` (COUNTED ${r.counted}, expected ${r.expected})`}`
  console.log([line('1 processor', f.one), line('1 processor + changelog', f.oneChangelog), line('2 processors + changelog', f.twoChangelog)].join('\n'))
}
