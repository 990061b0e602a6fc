/**
 * The ordered exactly-once write of one batch (one partition, one offset range). In this order, so
 * a crash at any point replays exactly (the crash points, below, are named after the step they follow):
 * 1. durably record the batch's offset range (the intent): in the changelog first when it is on,
 *    then locally; written while the batch is computed, awaited before the first sink write
 *    (crash point `after_intent`);
 * 2. build the rows from the committed state (writes go to the store's in-memory overlay);
 * 3. write ClickHouse, one insert token per table (`before_sink`, `mid_sink` after events_raw,
 *    `after_sink`), then Iceberg, whose snapshot summary names the range (`after_iceberg`).
 *    A ClickHouse refusal for content isolates the offending records as `sink_rejected` bad rows
 *    (poison isolation) and builds the batch again without them;
 * 4. with the changelog on, append the batch's state changes there (`after_changelog`);
 * 5. commit the state overlay and `applied = max` in one LMDB transaction (`after_state`);
 * 6. commit the log offset (`after_commit`); then, with the changelog on, maybe a snapshot.
 * A failure before 5 discards the overlay: nothing is marked seen by a write that failed.
 * The caller (processor.ts) skips records at or below `applied` and re-forms a pending intent's
 * range before calling `write`, so a replay writes the same rows under the same tokens.
 */
import type { ClickHouseClient } from '@clickhouse/client'
import type { Logger } from 'pino'
import type { BatchContext, LogRecord } from '../log/log.js'
import type { ProcessorMetrics } from '../metrics/registry.js'
import { createClickHouseSink } from '../sinks/clickhouse-sink.js'
import { disabledSink, type Sink } from '../sinks/sink.js'
import { SinkWriteError } from '../sinks/sink-errors.js'
import { deltaRecords, intentRecord } from '../state/changelog.js'
import { FencedError, type PartitionOwnership } from '../state/ownership.js'
import type { BuiltBatch, PartitionWorker } from './event-worker.js'

/**
 * The crash points, in the order of the write above, where the crash tests kill the process:
 * `ADC_CRASH_AT=<point>:<n>` sends SIGKILL to this process the n-th time (default 1st) it reaches
 * `<point>`. Unset, this is a no-op. Points, in order: after_intent, before_sink, mid_sink (after
 * events_raw), after_sink, after_iceberg, after_state, after_commit.
 */
export const CRASH_POINTS = ['after_intent', 'before_sink', 'mid_sink', 'after_sink', 'after_iceberg', 'after_state', 'after_commit'] as const
/** With the state changelog on: after the batch's state changes reached the changelog, before the local state commit. */
export const CHANGELOG_CRASH_POINTS = ['after_changelog'] as const
export type CrashPoint = (typeof CRASH_POINTS)[number] | (typeof CHANGELOG_CRASH_POINTS)[number]

export function crashPointsFromEnv(env: NodeJS.ProcessEnv = process.env): (point: CrashPoint) => void {
  const spec = env.ADC_CRASH_AT
  if (!spec) return () => {}
  const [name, nth] = spec.split(':')
  let remaining = Number(nth ?? '1') || 1
  return (point) => {
    if (point !== name) return
    remaining--
    if (remaining === 0) process.kill(process.pid, 'SIGKILL')
  }
}

export interface BatchWriterOptions {
  clickhouse: ClickHouseClient
  /** ClickHouse database (tables from ddl.ts, migrated beforehand). */
  database: string
  /** Test-only negative control: INSERTs without dedup tokens. @default true */
  dedupTokens?: boolean
  crash: (point: CrashPoint) => void
  metrics: ProcessorMetrics
  logger: Logger
}

/** One partition as the writer sees it: its topic, its worker (state and rows) and its changelog hold. */
export interface PartitionWrite {
  topic: string
  worker: PartitionWorker
  /** Set when the state changelog is on. */
  own?: PartitionOwnership
}

export interface BatchWriter {
  /** The Iceberg sink, once opened (until then, and without one, only ClickHouse is written). */
  useIceberg(sink: Sink): void
  /** Closes the sinks' scratch directories and the lake's catalog; a later write opens them again. */
  close(): Promise<void>
  /** Writes `records` (none at or below `applied`) through steps 1 to 6; answers what was written. */
  write(part: PartitionWrite, records: LogRecord[], ctx: BatchContext): Promise<BuiltBatch>
}

export function createBatchWriter(o: BatchWriterOptions): BatchWriter {
  const { crash, metrics, logger } = o
  const chSink = createClickHouseSink({ client: o.clickhouse, database: o.database, dedupTokens: o.dedupTokens, afterTable: (t) => t === 'events_raw' && crash('mid_sink') })
  let iceberg: Sink = disabledSink

  /** Every sink's probe: rejects (SinkWriteError) as a write would for the batch's content; stores nothing. */
  async function probeSinks(batch: BuiltBatch['batch']): Promise<void> {
    await chSink.probe!(batch)
    await iceberg.probe?.(batch)
  }

  /**
   * Finds the records whose rows a sink refuses for their content (offset → engine message), by
   * probing prefixes of the batch: the shortest refused prefix ends with an offending record, which
   * is set aside (a `sink_rejected` bad row) before the search goes on, until the whole batch probes
   * clean. Each probe builds its prefix from the committed state (the overlay is discarded after)
   * and stores nothing, so the answer depends only on the records, the state and the engine: a
   * replay after a crash sets aside the same records and writes the same rows under the same
   * tokens. Costs about log2(n) probe builds per offending record, and only after a failure.
   */
  async function isolateRejected(topic: string, worker: PartitionWorker, records: LogRecord[]): Promise<Map<number, string>> {
    const rejected = new Map<number, string>()
    const refusedAt = async (n: number, aside: ReadonlyMap<number, string> = rejected): Promise<SinkWriteError | undefined> => {
      try {
        await probeSinks((await worker.build(topic, records.slice(0, n), aside)).batch)
        return undefined
      } catch (err) {
        if (err instanceof SinkWriteError && err.failure.kind === 'content') return err
        throw err
      } finally {
        worker.store.discard()
      }
    }
    // Refused even with every record set aside: the rows come from state (e.g. a waiting click
    // expiring), not from these records. Nothing to set aside; the partition stalls, visibly.
    if (await refusedAt(records.length, new Map(records.map((r) => [r.offset, ''])))) return rejected
    let clean = 0 // a prefix length known to probe clean (set-aside records lie beyond it)
    for (let failed = await refusedAt(records.length); failed; failed = await refusedAt(records.length)) {
      let refused = records.length
      while (refused - clean > 1) {
        const mid = (clean + refused) >>> 1
        const f = await refusedAt(mid)
        if (f) {
          refused = mid
          failed = f
        } else clean = mid
      }
      const { failure } = failed
      rejected.set(records[refused - 1]!.offset, `${failed.sink}: ${failure.type ? `${failure.type}: ` : ''}${failure.message}`.slice(0, 1000))
      // The next offending record lies further on: start there once that is checked.
      if (refused < records.length && !(await refusedAt(refused))) clean = refused
    }
    return rejected
  }

  async function write({ topic, worker, own }: PartitionWrite, records: LogRecord[], ctx: BatchContext): Promise<BuiltBatch> {
    const store = worker.store
    const minOffset = records[0]!.offset
    const maxOffset = records[records.length - 1]!.offset
    const recovering = store.pendingIntent() !== undefined
    if (own?.fenced) throw new FencedError(topic, records[0]!.partition)
    // The intent only has to be durable before the first sink write: it is written while the batch
    // is computed (the computation touches only the in-memory overlay).
    let intentWrite: Promise<void> | undefined
    if (!recovering) {
      const intent = { minOffset, maxOffset }
      intentWrite = own ? own.append([intentRecord(records[0]!.partition, own.owner, intent)]).then((pos) => store.writeIntent(intent, pos)) : store.writeIntent(intent)
      intentWrite.catch(() => {}) // awaited below; this only keeps an early failure from being unhandled
    }
    let built: BuiltBatch
    try {
      // A sink that refuses the batch for its content would refuse it on every retry: the records
      // behind the refusal are isolated (set aside as bad rows) and the batch is built again from
      // the committed state without them. Any other failure is thrown: the whole batch is retried.
      let rejected: Map<number, string> | undefined
      for (;;) {
        built = await worker.build(topic, records, rejected)
        await intentWrite
        crash('after_intent')
        crash('before_sink')
        try {
          let t0 = performance.now()
          await chSink.write(built.batch, { recovering })
          metrics.sinkLatency.observe({ sink: 'clickhouse' }, (performance.now() - t0) / 1000)
          crash('after_sink')
          t0 = performance.now()
          await iceberg.write(built.batch, { recovering })
          if (iceberg !== disabledSink) metrics.sinkLatency.observe({ sink: 'iceberg' }, (performance.now() - t0) / 1000)
        } catch (err) {
          // Only a refusal by ClickHouse, written first and leaving nothing stored when it refuses
          // (clickhouse-sink.ts), can be rebuilt: once it acknowledged the batch, its rows stand
          // under these tokens, and a rebuilt batch would leave state and lake disagreeing with them.
          // Iceberg takes the same values as events_raw, which refuses every time Iceberg would; if
          // it ever refuses alone, the partition stalls, visibly (health, lag), rather than miscount.
          if (!(err instanceof SinkWriteError) || err.failure.kind !== 'content' || err.sink !== chSink.name || rejected) throw err
          store.discard()
          logger.warn({ topic, partition: records[0]!.partition, from: minOffset, to: maxOffset, sink: err.sink, engineCode: err.failure.code, engineType: err.failure.type, reason: 'content' }, 'a sink refused the batch for its content; isolating the records behind it')
          rejected = await isolateRejected(topic, worker, records)
          if (rejected.size === 0) throw err // the probes took every row: nothing to set aside, retry as is
          logger.warn({ topic, partition: records[0]!.partition, offsets: [...rejected.keys()] }, 'records refused by a sink set aside as sink_rejected bad rows')
          continue
        }
        break
      }
      crash('after_iceberg')
      if (own) {
        const position = await own.append(deltaRecords(records[0]!.partition, own.owner, maxOffset, store.pendingEntries(maxOffset)))
        crash('after_changelog')
        await store.commit(maxOffset, position)
      } else await store.commit(maxOffset)
      crash('after_state')
    } catch (err) {
      await intentWrite?.catch(() => {})
      store.discard()
      throw err
    }
    ctx.resolveOffset(maxOffset)
    if (!ctx.isStale()) await ctx.commit()
    crash('after_commit')
    if (own) await own.maybeSnapshot(store)
    return built
  }

  return {
    useIceberg(sink) {
      iceberg = sink
    },
    write,
    /** Closes the sinks: their scratch directories and the lake's catalog (a next start opens them again). */
    async close() {
      const lake = iceberg
      iceberg = disabledSink
      await chSink.close?.()
      await lake.close?.()
    },
  }
}
