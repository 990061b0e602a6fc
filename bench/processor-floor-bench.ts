/**
 * The floor of the processor's design: what every event costs in the parts no pipeline logic can
 * avoid, each measured alone, on the same events, in one run, as CPU of the whole process (chDB's
 * and libuv's threads included):
 * - `parse`: JSON.parse of the log records (the processor bench's baseline, without reading the log);
 * - `state`: two LMDB puts per event, a delivery key and the impression id's state, in one write
 *   transaction per batch, as the partition store commits (random 16-byte keys, 24-byte values);
 * - `encode`: the events_raw row as RowBinary (RowBinaryWriter, from the row objects);
 * - `insert`: events_raw's insert on chDB, through the ClickHouse sink (small tables empty);
 * - `merge`: the engine merging those parts into one (OPTIMIZE FINAL): background merges rewrite
 *   every row at least once;
 * - `lake`: the Iceberg sink's append of the same rows (Parquet, zstd, one snapshot per batch).
 * Their sum is spent before any of the pipeline's own logic (decoding into an envelope, dedupe and
 * join decisions, IVT, rollups), so `ceilingRatio` = parse / sum bounds the processor bench's ratio
 * from above for this design.
 *
 *   node --max-semi-space-size=512 --expose-gc --import tsx bench/processor-floor-bench.ts
 *
 * Env: FLOOR_BENCH_EVENTS (80000), FLOOR_BENCH_BATCH (20000, the processor's default).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { open } from 'lmdb'
import { createClickHouse, migrate } from '../core/src/clickhouse/client.js'
import type { LogRecord } from '../core/src/log/log.js'
import { createEventWorker } from '../core/src/processor/event-worker.js'
import { createClickHouseSink, eventsRowBinary } from '../core/src/sinks/clickhouse-sink.js'
import { createIcebergSink } from '../core/src/sinks/iceberg-sink.js'
import type { SinkBatch } from '../core/src/sinks/sink.js'
import { PartitionStore } from '../core/src/state/partition-store.js'
import { trafficMix } from '../core/src/testing/events.js'

export interface FloorFigures {
  events: number
  batch: number
  /** CPU µs per event of each part measured alone. */
  usPerEvent: { parse: number; state: number; encode: number; insert: number; merge: number; lake: number }
  /** The parts together, µs per event. */
  floorUsPerEvent: number
  /** parse / floor: the highest pipeline-to-JSON.parse ratio this design can reach with every sink on. */
  ceilingRatio: number
  /** 1e6 / floor: the most events per CPU-second this design can reach with every sink on. */
  ceilingEventsPerCpuSecond: number
}

const cpuUs = (): number => {
  const u = process.cpuUsage()
  return u.user + u.system
}

/** CPU µs of `run`, whole process, after a full GC (so an earlier part's garbage is not charged to it). */
async function measure(run: () => Promise<void> | void): Promise<number> {
  globalThis.gc?.()
  const c0 = cpuUs()
  await run()
  return cpuUs() - c0
}

export async function runProcessorFloorBench(options: { events?: number; batch?: number } = {}): Promise<FloorFigures> {
  const total = options.events ?? Number(process.env.FLOOR_BENCH_EVENTS ?? 80_000)
  const batchSize = options.batch ?? Number(process.env.FLOOR_BENCH_BATCH ?? 20_000)
  const root = mkdtempSync(join(tmpdir(), 'adc-floor-bench-'))
  const t0 = Date.UTC(2026, 10, 23, 12)
  const records: LogRecord[] = trafficMix(total).records.slice(0, total).map((r, offset) => ({ topic: 'ad-events', partition: 0, offset, key: r.key ?? '', value: r.value, timestamp: t0 + offset }))
  const events = records.length
  const chunks: LogRecord[][] = []
  for (let i = 0; i < events; i += batchSize) chunks.push(records.slice(i, i + batchSize))

  // The rows the sinks write, built by the real pipeline once (not measured; state not committed).
  const store = PartitionStore.open(join(root, 'state'), 0)
  const worker = createEventWorker(store, { eventRowObjects: true })
  const batches: SinkBatch[] = []
  for (const chunk of chunks) {
    const built = await worker.build('ad-events', chunk)
    batches.push({ ...built.batch, rollup: [], rollupIvt: [], ivtDecisions: [], badRows: [], edgeStats: [], eventsRowBinary: { bytes: Buffer.from(built.batch.eventsRowBinary!.bytes), refusal: undefined } })
    store.discard()
  }
  await store.close()
  const rows = batches.reduce((s, b) => s + b.events.length, 0)

  const ch = createClickHouse({ dataDir: join(root, 'chdb') })
  const lmdb = open({ path: join(root, 'lmdb'), compression: false, encoding: 'binary' })
  try {
    await migrate(ch, 'floor')
    const us: FloorFigures['usPerEvent'] = { parse: 0, state: 0, encode: 0, insert: 0, merge: 0, lake: 0 }
    let sink = 0
    us.parse = await measure(() => {
      for (const r of records) sink += (JSON.parse(r.value) as { receivedAt: number }).receivedAt & 1
    })
    const keys = Array.from({ length: 2 * events }, () => randomBytes(16))
    const value = Buffer.alloc(24, 7)
    us.state = await measure(async () => {
      for (let i = 0; i < keys.length; i += 2 * batchSize) {
        let last: Promise<boolean> | undefined
        for (const k of keys.slice(i, i + 2 * batchSize)) last = lmdb.put(k, value)
        await last
      }
    })
    us.encode = await measure(() => {
      for (const b of batches) sink += eventsRowBinary(b.events).bytes.length & 1
    })
    await ch.command({ query: 'SYSTEM STOP MERGES floor.events_raw' })
    const chSink = createClickHouseSink({ client: ch, database: 'floor' })
    us.insert = await measure(async () => {
      for (const b of batches) await chSink.write(b, { recovering: false })
    })
    us.merge = await measure(async () => {
      await ch.command({ query: 'SYSTEM START MERGES floor.events_raw' })
      await ch.command({ query: 'OPTIMIZE TABLE floor.events_raw FINAL' })
    })
    const lake = await createIcebergSink({ client: ch, dir: join(root, 'lake'), warehouse: pathToFileURL(join(root, 'lake', 'warehouse')).href })
    us.lake = await measure(async () => {
      for (const b of batches) await lake.write(b, { recovering: false })
    })
    await lake.close?.()
    await chSink.close?.()
    const stored = await (await ch.query({ query: 'SELECT count() AS n FROM floor.events_raw', format: 'JSONEachRow' })).json<{ n: string }>()
    if (Number(stored[0]!.n) !== rows) throw new Error(`events_raw holds ${stored[0]!.n} rows, not ${rows}`)
    if (sink < 0) console.log(sink)
    for (const k of Object.keys(us) as Array<keyof typeof us>) us[k] = Math.round((us[k] / events) * 100) / 100
    const floor = Object.values(us).reduce((a, b) => a + b, 0)
    return {
      events,
      batch: batchSize,
      usPerEvent: us,
      floorUsPerEvent: Math.round(floor * 100) / 100,
      ceilingRatio: Math.round((us.parse / floor) * 1000) / 1000,
      ceilingEventsPerCpuSecond: Math.round(1e6 / floor),
    }
  } finally {
    await lmdb.close()
    await ch.close()
    rmSync(root, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const f = await runProcessorFloorBench()
  console.log(JSON.stringify(f, null, 2))
  const u = f.usPerEvent
  console.log(`floor ${f.floorUsPerEvent} µs per event (parse ${u.parse}, state ${u.state}, encode ${u.encode}, insert ${u.insert}, merge ${u.merge}, lake ${u.lake}): at most ${f.ceilingEventsPerCpuSecond} events per CPU-second, ratio to JSON.parse at most ${f.ceilingRatio}`)
}
