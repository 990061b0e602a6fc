import { randomUUID } from 'node:crypto'
import { join as joinPath } from 'node:path'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Registry } from 'prom-client'
import type { Logger } from 'pino'
import { EDGE_STATS_TOPIC, EVENTS_TOPIC, STATE_CHANGELOG_TOPIC } from '@adc/schemas'
import type { Batch, BatchContext, Consumer, Log, LogRecord } from '../log/log.js'
import { processorMetrics, type ProcessorMetrics } from '../metrics/registry.js'
import { BatchBuilder } from '../sinks/batch-builder.js'
import { createClickHouseSink } from '../sinks/clickhouse-sink.js'
import { createIcebergSink, type IcebergSinkOptions } from '../sinks/iceberg-sink.js'
import { disabledSink, type Sink } from '../sinks/sink.js'
import { SinkWriteError, type SinkFailure } from '../sinks/sink-errors.js'
import { sweepExpired } from '../state/expiry.js'
import { ChangelogFold, changelogTopicFor, claimedByOther, claimRecord, deltaRecords, intentRecord, snapshotRecords } from '../state/changelog.js'
import { PartitionStore } from '../state/partition-store.js'
import { crashPointsFromEnv, type CrashPoint } from './crash-points.js'
import { decodeEdgeStats } from './edge-stats.js'
import { createEventWorker, sinkRejected, type BuiltBatch, type EventWorkerOptions, type PartitionWorker } from './event-worker.js'

export interface ProcessorDeps extends EventWorkerOptions {
  log: Log
  clickhouse: ClickHouseClient
  /** ClickHouse database (tables from ddl.ts, migrated beforehand). */
  database: string
  /** Root of the partition-local LMDB state (`<stateDir>/<topic>/p<partition>`). */
  stateDir: string
  groupId: string
  logger: Logger
  registry: Registry
  /** Iceberg raw table: the embedded catalog and warehouse directory; unset (and no `iceberg.catalog`): no Iceberg sink. */
  icebergDir?: string
  /** Scale-out Iceberg instead: REST catalog and S3 storage; see createIcebergSink. */
  iceberg?: Pick<IcebergSinkOptions, 'catalog' | 's3' | 'warehouse' | 'namespace' | 'table'>
  /**
   * Records per batch (one partition). Each batch pays a fixed cost per ClickHouse table it inserts
   * into (a part written, then merged: about 5-15 ms of CPU on chDB even for one row), so larger
   * batches spread it: measured with bench/processor-bench.ts (200k events, 4 partitions) 5000 →
   * about 20k events per CPU-second, 20000 → about 29k, 50000 → about 28k (events_raw parts over
   * min_bytes_for_wide_part become wide parts, dearer to write). At low rates batches are small
   * anyway (a batch is what the log has), so this bounds memory and delay only under load.
   * Kafka fetches by bytes (kafkajs maxBytesPerPartition), which caps batches there first.
   * @default 20000
   */
  maxBatchRecords?: number
  /** Test-only negative control: INSERTs without dedup tokens. @default true */
  dedupTokens?: boolean
  /** Crash-test hook; @default from `ADC_CRASH_AT` */
  crashPoint?: (point: CrashPoint) => void
  /** First delay after a failed batch; the log redelivers it. @default 200 */
  retryDelayMs?: number
  /** Partitions of the topics if the processor has to create them (existing topics are kept). @default 4 */
  topicPartitions?: number
  /**
   * State changelog, for several processors sharing the partitions (see HANDOFF below): each batch's
   * intent and state changes go to this topic first, and a processor that takes a partition restores
   * its state from it before the first batch. Unset: state is local only (one processor).
   * `adc-state-changelog` for ad-events, `adc-state-changelog.edge-stats` for edge-stats.
   */
  changelog?: {
    topic?: string
    /** Test-only negative control: claim but do not restore. @default true */
    restore?: boolean
    /**
     * A partition's owner writes a snapshot of its whole state and truncates the changelog before it
     * once the changelog records since the last snapshot exceed max(this, 2 × that snapshot).
     * @default 16 MiB (characters of JSON)
     */
    snapshotMinChars?: number
    /**
     * Also writes a snapshot (and truncates) once the last one is this old and records followed it,
     * so a quiet partition's changelog is bounded in age too (nothing older than the state lingers).
     * @default 24 h
     */
    snapshotMaxAgeMs?: number
  }
  /** Source topic names (tests on a shared broker). @default ad-events, edge-stats */
  topics?: { events?: string; edgeStats?: string }
}

/** Characters of changelog records per append (Kafka's default message.max.bytes is 1 MiB per partition batch). */
const CHANGELOG_APPEND_CHARS = 512 * 1024

/** Thrown when another processor claimed the partition: this one must not write it any more. */
export class FencedError extends Error {
  constructor(topic: string, partition: number) {
    super(`partition ${partition} of ${topic} was claimed by another processor`)
    this.name = 'FencedError'
  }
}

/** This processor's hold on one partition's changelog. */
interface Ownership {
  owner: string
  /** Changelog offset of this owner's last record; every record up to it was checked for claims. */
  lastOwn: number
  fenced: boolean
  /** Characters of changelog records since the last snapshot (what a restore reads), and that snapshot's. */
  sinceSnapshot: number
  snapshotChars: number
  /** When the last snapshot was written (or the partition claimed), epoch ms. */
  snapshotAt: number
}

export interface PartitionStatus {
  applied: number
  lag: number
  /** ad-events only: clicks waiting for their impression (accepted, not yet written). */
  waitingClicks?: number
}

export interface ProcessorStatus {
  running: boolean
  topics: Record<string, Record<number, PartitionStatus>>
  /** Totals since start. */
  events: { billable: number; unbilled: number; badRows: number; pending: number }
  batches: number
  failures: number
  /** Edge receivedAt of the newest event written, epoch ms (0 before the first). */
  lastReceivedAt: number
  lastWriteAt: number
}

/** A partition whose batch failed and has not been written since (its lag grows). */
export interface StalledPartition {
  topic: string
  partition: number
  /** Epoch ms of the first failed attempt in a row. */
  since: number
  attempts: number
  /** `content`: a sink refused rows that could not be isolated; otherwise infrastructure. */
  cause: SinkFailure['kind']
  /** The sink that failed, if a sink did. */
  sink?: string
  /**
   * ClickHouse error code and name, when the engine answered one. The engine's message is only in
   * the log line of each attempt: it can quote row content, and /healthz answers anyone.
   */
  code?: number
  type?: string
}

export interface ProcessorHealth {
  /** `degraded` while any partition is stalled. */
  status: 'ok' | 'degraded'
  stalled: StalledPartition[]
}

export interface Processor {
  start(): Promise<void>
  /** Stops fetching, lets the in-flight batch finish writing and commit, closes the state. */
  stop(): Promise<void>
  status(): ProcessorStatus
  health(): ProcessorHealth
}

interface TopicRuntime {
  topic: string
  workers: Map<number, PartitionWorker>
  /** Ownership of each assigned partition's changelog (changelog on). */
  owners: Map<number, Ownership>
  /** Records of a pending range received so far, per partition, while it arrives in pieces. */
  held: Map<number, LogRecord[]>
  makeWorker(store: PartitionStore): PartitionWorker
}

/**
 * The processor: consumes `ad-events` through the pipeline and `edge-stats` into edge_stats_minute.
 *
 * Per batch (one partition, one offset range), in this order, so a crash at any point replays exactly:
 * 1. skip records at or below the partition's `applied` offset (their effects are in every sink);
 * 2. durably record the batch's offset range (the intent), unless an earlier attempt left one: then
 *    the batch is re-formed as exactly that range (cut from a longer delivery, or gathered from
 *    shorter ones), so a replay writes the same rows under the same tokens;
 * 3. compute verdicts from the committed state (writes go to an in-memory overlay);
 * 4. write ClickHouse (token per table), then Iceberg (probe on recovery);
 * 5. commit the state overlay and `applied = max` in one LMDB transaction;
 * 6. commit the log offset.
 * A failure before 5 discards the overlay: nothing is marked seen by a write that failed.
 * Backpressure: one batch at a time per topic; the log is read again only after the batch committed.
 *
 * HANDOFF between processors (`changelog` set; state/changelog.ts has the record format and fold).
 * A partition's state is a pure function of its changelog: every local state change is appended
 * there first. With it on, steps 2 and 5 become:
 * 2. append `intent{min,max}` to changelog partition p, check it (below), then write it locally;
 * 5. append the batch's state changes (`part`s + `delta`), check them, then commit locally.
 * On assignment, before any batch: append `claim{owner}` (a fresh id), read the changelog from the
 * local store's position (0 for a new machine) up to and past the claim, fold it into the store.
 * The check after each append: the owner's records must follow its previous one densely, else the
 * records in between are read; a claim by someone else among them fences this owner (FencedError,
 * nothing more written; the batch stays uncommitted for the new owner).
 * The fold ignores every record an owner writes after someone else's claim, and intents or deltas
 * at or below `applied`.
 *
 * Why counts stay exact when p moves from A to B (B's state = the fold up to B's claim):
 * - A died before its intent reached the changelog: no sink saw the range (sinks come after the
 *   intent); B forms its own range from the committed offset.
 * - A's intent is in the changelog, its delta is not (A died after_intent, before/mid/after the
 *   sinks, after Iceberg): B's fold ends with that intent, so B re-forms exactly that range (gathered
 *   or cut from what the log hands it, see onBatch) from exactly the state A computed it from (the
 *   fold up to the intent = A's committed state), so the same rows under the same per-table dedup
 *   tokens: ClickHouse keeps the first copy of each table's block, whoever wrote it.
 * - A's delta is in the changelog but A died before its local commit or the log commit
 *   (after_changelog, after_state): B's fold applied it, `applied` covers the range, B skips it and
 *   only commits the offset.
 * - A is alive but lost p (a zombie: kafkajs evicted it after the session timeout while a sink write
 *   hung, or a network partition); on the embedded log this cannot happen, a partition is only taken
 *   after its holder released it. Whatever A appends after B's claim is ignored by every fold. If
 *   A's intent landed before B's claim, B replays that range: A's late sink writes carry the same
 *   tokens, so only one copy counts. If A's intent landed after B's claim, A's check sees the claim
 *   and A writes no sink. A's log commit is refused (stale generation); its local state is never
 *   read again without a new claim and a catch-up fold. One window remains: the dedup tokens of
 *   non-replicated tables are remembered for the last DEDUP_WINDOW inserts per table (ddl.ts), so a
 *   zombie's write delayed past that many inserts of other batches would not be recognised.
 * - B dies while restoring: nothing was written but a claim; the next owner claims again.
 * - A new machine (no local state): it folds the whole changelog from offset 0 (see bounding below).
 * Determinism this relies on: verdicts depend only on the state and the records (the watermark is
 * event data, not the clock), and the changelog carries values as JSON, which the state uses only
 * for plain numbers, strings, arrays and objects.
 *
 * Bounding the changelog: snapshots plus truncation (maybeSnapshot), not Kafka log compaction: a
 * compacted topic keeps the last record per key by offset, but the fold needs record order (claims
 * fence later records of earlier owners, and a zombie's late delta must not overwrite a newer value
 * of the same key). A snapshot is written through appendOwn (so a fenced owner writes none) and
 * the records before it are deleted only after it is complete; a store whose position fell
 * behind the truncation rebuilds from the snapshot (ChangelogFold `reset`). A snapshot by an owner
 * that is fenced right after its check still holds the state at its `applied`, before the new
 * claim, which the fold then applies on top.
 */
export function createProcessor(deps: ProcessorDeps): Processor {
  const { log, clickhouse, database, stateDir, groupId, logger, maxBatchRecords = 20_000, retryDelayMs = 200 } = deps
  const metrics: ProcessorMetrics = processorMetrics(deps.registry)
  const crash = deps.crashPoint ?? crashPointsFromEnv()
  const chSink = createClickHouseSink({ client: clickhouse, database, dedupTokens: deps.dedupTokens, afterTable: (t) => t === 'events_raw' && crash('mid_sink') })
  let iceberg: Sink = disabledSink
  const consumers: Consumer[] = []
  const totals: ProcessorStatus = { running: false, topics: {}, events: { billable: 0, unbilled: 0, badRows: 0, pending: 0 }, batches: 0, failures: 0, lastReceivedAt: 0, lastWriteAt: 0 }

  const events: TopicRuntime = { topic: deps.topics?.events ?? EVENTS_TOPIC, workers: new Map(), owners: new Map(), held: new Map(), makeWorker: (store) => createEventWorker(store, deps) }
  const edgeStats: TopicRuntime = {
    topic: deps.topics?.edgeStats ?? EDGE_STATS_TOPIC,
    workers: new Map(),
    owners: new Map(),
    held: new Map(),
    makeWorker: (store) => ({
      store,
      async build(topic, records, rejected): Promise<BuiltBatch> {
        const b = new BatchBuilder(topic, records[0]!.partition, records[0]!.offset, records[records.length - 1]!.offset)
        const batch = b.build()
        for (const rec of records) {
          const ref = { topic, partition: rec.partition, offset: rec.offset }
          const refused = rejected?.get(rec.offset)
          if (refused !== undefined) {
            b.addBadRow(ref, rec.timestamp, sinkRejected(rec, refused))
            b.counts.badRows.sink_rejected = (b.counts.badRows.sink_rejected ?? 0) + 1
            continue
          }
          const r = decodeEdgeStats(store, { ref, payload: rec.value, appendedAt: rec.timestamp })
          if (r.kind === 'ok') {
            batch.edgeStats.push(r.value)
            b.counts.billable++
          }
          else if (r.kind === 'bad_row') {
            b.addBadRow(ref, rec.timestamp, { ...r, lastStep: r.step })
            b.counts.badRows[r.reason] = (b.counts.badRows[r.reason] ?? 0) + 1
          } else b.counts.unbilled[r.reason] = (b.counts.unbilled[r.reason] ?? 0) + 1
        }
        sweepExpired(store)
        return { batch, counts: b.counts, maxReceivedAt: 0 }
      },
    }),
  }

  const statusOf = (topic: string, p: number): PartitionStatus => ((totals.topics[topic] ??= {})[p] ??= { applied: -1, lag: 0 })
  const stalls = new Map<string, StalledPartition>()
  const stallKey = (topic: string, p: number): string => `${topic}\u001f${p}`
  function clearStall(topic: string, p: number): void {
    if (stalls.delete(stallKey(topic, p))) logger.info({ topic, partition: p }, 'partition written again after failed attempts')
    metrics.stalled.set({ topic, partition: String(p) }, 0)
  }

  /**
   * Marks the partition stalled after a failed attempt, until a batch of it is written: its lag
   * keeps growing with the log (the high watermark of each redelivery), so a batch that keeps
   * failing shows on /metrics and /healthz instead of reading as caught up.
   */
  function recordStall(rt: TopicRuntime, batch: Batch, err: unknown, applied: number): StalledPartition {
    const failure: SinkFailure = err instanceof SinkWriteError ? err.failure : { kind: 'infrastructure', message: err instanceof Error ? err.message : String(err) }
    const key = stallKey(rt.topic, batch.partition)
    const prev = stalls.get(key)
    const stall: StalledPartition = {
      topic: rt.topic, partition: batch.partition, since: prev?.since ?? Date.now(), attempts: (prev?.attempts ?? 0) + 1, cause: failure.kind,
      ...(err instanceof SinkWriteError ? { sink: err.sink } : {}),
      ...(failure.code !== undefined ? { code: failure.code } : {}),
      ...(failure.type !== undefined ? { type: failure.type } : {}),
    }
    stalls.set(key, stall)
    metrics.stalled.set({ topic: rt.topic, partition: String(batch.partition) }, 1)
    const lag = Math.max(0, batch.highWatermark - (applied + 1))
    metrics.lag.set({ topic: rt.topic, partition: String(batch.partition) }, lag)
    statusOf(rt.topic, batch.partition).lag = lag
    return stall
  }

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
  async function isolateRejected(rt: TopicRuntime, worker: PartitionWorker, records: LogRecord[]): Promise<Map<number, string>> {
    const rejected = new Map<number, string>()
    const refusedAt = async (n: number, aside: ReadonlyMap<number, string> = rejected): Promise<SinkWriteError | undefined> => {
      try {
        await probeSinks((await worker.build(rt.topic, records.slice(0, n), aside)).batch)
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

  async function writeChunk(rt: TopicRuntime, worker: PartitionWorker, records: LogRecord[], ctx: BatchContext, highWatermark: number): Promise<void> {
    const store = worker.store
    const minOffset = records[0]!.offset
    const maxOffset = records[records.length - 1]!.offset
    const recovering = store.pendingIntent() !== undefined
    const own = rt.owners.get(records[0]!.partition)
    if (own?.fenced) throw new FencedError(rt.topic, records[0]!.partition)
    // The intent only has to be durable before the first sink write: it is written while the batch
    // is computed (the computation touches only the in-memory overlay).
    let intentWrite: Promise<void> | undefined
    if (!recovering) {
      const intent = { minOffset, maxOffset }
      intentWrite = own ? appendOwn(rt, own, [intentRecord(records[0]!.partition, own.owner, intent)]).then((pos) => store.writeIntent(intent, pos)) : store.writeIntent(intent)
      intentWrite.catch(() => {}) // awaited below; this only keeps an early failure from being unhandled
    }
    let built: BuiltBatch
    try {
      // A sink that refuses the batch for its content would refuse it on every retry: the records
      // behind the refusal are isolated (set aside as bad rows) and the batch is built again from
      // the committed state without them. Any other failure is thrown: the whole batch is retried.
      let rejected: Map<number, string> | undefined
      for (;;) {
        built = await worker.build(rt.topic, records, rejected)
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
          logger.warn({ topic: rt.topic, partition: records[0]!.partition, from: minOffset, to: maxOffset, sink: err.sink, engineCode: err.failure.code, engineType: err.failure.type, reason: 'content' }, 'a sink refused the batch for its content; isolating the records behind it')
          rejected = await isolateRejected(rt, worker, records)
          if (rejected.size === 0) throw err // the probes took every row: nothing to set aside, retry as is
          logger.warn({ topic: rt.topic, partition: records[0]!.partition, offsets: [...rejected.keys()] }, 'records refused by a sink set aside as sink_rejected bad rows')
          continue
        }
        break
      }
      crash('after_iceberg')
      if (own) {
        const position = await appendOwn(rt, own, deltaRecords(records[0]!.partition, own.owner, maxOffset, store.pendingEntries(maxOffset)))
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
    if (own) await maybeSnapshot(rt, own, store)

    const now = Date.now()
    const { counts } = built
    // For edge-stats, "written" counts reports stored (they are not events to bill).
    metrics.events.inc({ topic: rt.topic, outcome: rt === edgeStats ? 'written' : 'billable', reason: '' }, counts.billable)
    for (const [reason, n] of Object.entries(counts.unbilled)) metrics.events.inc({ topic: rt.topic, outcome: 'unbilled', reason }, n)
    for (const [reason, n] of Object.entries(counts.badRows)) metrics.events.inc({ topic: rt.topic, outcome: 'bad_row', reason }, n)
    if (counts.pending) metrics.events.inc({ topic: rt.topic, outcome: 'pending', reason: 'join_pending' }, counts.pending)
    metrics.batches.inc({ topic: rt.topic, result: 'written' })
    metrics.batchRecords.observe({ topic: rt.topic }, records.length)
    const lag = Math.max(0, highWatermark - (maxOffset + 1))
    metrics.lag.set({ topic: rt.topic, partition: String(records[0]!.partition) }, lag)
    if (built.maxReceivedAt > 0) {
      metrics.freshness.set({ topic: rt.topic }, Math.max(0, now - built.maxReceivedAt) / 1000)
      totals.lastReceivedAt = Math.max(totals.lastReceivedAt, built.maxReceivedAt)
    }
    if (rt !== edgeStats) totals.events.billable += counts.billable
    totals.events.unbilled += Object.values(counts.unbilled).reduce((a, b) => a + b, 0)
    totals.events.badRows += Object.values(counts.badRows).reduce((a, b) => a + b, 0)
    totals.events.pending += counts.pending
    totals.batches++
    totals.lastWriteAt = now
    Object.assign(statusOf(rt.topic, records[0]!.partition), { applied: maxOffset, lag })
    if (built.waitingClicks !== undefined) {
      statusOf(rt.topic, records[0]!.partition).waitingClicks = built.waitingClicks
      metrics.waitingClicks.set({ partition: String(records[0]!.partition) }, built.waitingClicks)
    }
    clearStall(rt.topic, records[0]!.partition)
  }

  const changelogTopic = (rt: TopicRuntime): string => changelogTopicFor(deps.changelog?.topic ?? STATE_CHANGELOG_TOPIC, rt.topic, events.topic)

  /**
   * Appends this owner's records to the partition's changelog and checks that no other processor
   * claimed the partition since this owner's last record: if the records landed right after it
   * (dense offsets) nothing came between; otherwise what came between is read and looked at.
   * Returns the changelog position after them. Throws FencedError (and stays fenced) if claimed.
   */
  async function appendOwn(rt: TopicRuntime, own: Ownership, recs: Array<{ key: string; value: string; partition?: number }>): Promise<{ next: number; owner: string; first: number }> {
    const partition = recs[0]!.partition!
    const topic = changelogTopic(rt)
    let firstOffset = -1
    // Kafka refuses a partition's record batch over message.max.bytes (1 MiB by default): a large
    // delta goes out in several appends (the fold applies its parts only once its delta record came).
    let last = own.lastOwn
    for (let i = 0; i < recs.length; ) {
      let j = i
      for (let size = 0; j < recs.length && (j === i || size + recs[j]!.value.length <= CHANGELOG_APPEND_CHARS); j++) size += recs[j]!.value.length
      const res = await log.append(topic, recs.slice(i, j))
      const first = res[0]!.offset
      if (firstOffset < 0) firstOffset = first
      last = res[res.length - 1]!.offset
      own.sinceSnapshot += recs.slice(i, j).reduce((n, r) => n + r.value.length, 0)
      const dense = first === own.lastOwn + 1 && last === first + res.length - 1
      if (!dense && claimedByOther((await log.readRange(topic, partition, own.lastOwn + 1)).filter((r) => r.offset <= last), own.owner)) {
        own.fenced = true
        throw new FencedError(rt.topic, partition)
      }
      own.lastOwn = last
      i = j
    }
    return { next: last + 1, owner: own.owner, first: firstOffset }
  }

  /**
   * Bounds the changelog: once the records since the last snapshot outgrow max(snapshotMinChars,
   * 2 × that snapshot), writes the whole state as a snapshot (right after a commit: no intent is
   * pending, local state = the fold) and deletes the records before it. A restore then reads at most
   * one snapshot and what followed it. A failed snapshot only delays this (the next batch retries).
   */
  async function maybeSnapshot(rt: TopicRuntime, own: Ownership, store: PartitionStore): Promise<void> {
    if (own.fenced) return
    const bySize = own.sinceSnapshot > Math.max(deps.changelog?.snapshotMinChars ?? 16 * 1024 * 1024, 2 * own.snapshotChars)
    const byAge = own.sinceSnapshot > own.snapshotChars && Date.now() - own.snapshotAt >= (deps.changelog?.snapshotMaxAgeMs ?? 24 * 3600_000)
    if (!bySize && !byAge) return
    try {
      const t0 = performance.now()
      const recs = snapshotRecords(store.partition, own.owner, store.appliedOffset(), store.entries())
      const before = own.sinceSnapshot
      const pos = await appendOwn(rt, own, recs)
      await store.setChangelogPosition({ next: pos.next, owner: pos.owner })
      await log.truncate(changelogTopic(rt), store.partition, pos.first)
      own.snapshotChars = own.sinceSnapshot - before
      own.sinceSnapshot = own.snapshotChars
      own.snapshotAt = Date.now()
      logger.info({ topic: rt.topic, partition: store.partition, applied: store.appliedOffset(), chars: own.snapshotChars, records: recs.length, truncatedBefore: pos.first, ms: Math.round(performance.now() - t0) }, 'state snapshot written; changelog truncated before it')
    } catch (err) {
      logger.warn({ err, topic: rt.topic, partition: store.partition }, 'state snapshot failed; retried after the next batch')
    }
  }

  /**
   * Takes partition `p`'s changelog: appends a claim (fencing any earlier owner), then folds every
   * record from the store's changelog position up to and including the claim into the local store.
   */
  async function claimAndRestore(rt: TopicRuntime, p: number, store: PartitionStore): Promise<Ownership> {
    const topic = changelogTopic(rt)
    const owner = randomUUID()
    const [claim] = await log.append(topic, [claimRecord(p, owner)])
    const own: Ownership = { owner, lastOwn: claim!.offset, fenced: false, sinceSnapshot: 0, snapshotChars: 0, snapshotAt: Date.now() }
    if (deps.changelog?.restore === false) return own
    const t0 = performance.now()
    const fold = new ChangelogFold({ applied: store.appliedOffset(), intent: store.pendingIntent(), position: store.changelogPosition() })
    const records = await log.readRange(topic, p, fold.next)
    for (const r of records) {
      fold.add(r)
      own.sinceSnapshot += r.value.length
    }
    if (fold.next <= claim!.offset) throw new Error(`changelog ${topic}/${p} was read only to ${fold.next}, before the claim at ${claim!.offset}`)
    if (fold.owner !== owner) own.fenced = true // another processor claimed it right after us
    await store.restore(fold.result())
    logger.info({ topic: rt.topic, partition: p, records: records.length, fromSnapshot: fold.reset, applied: fold.applied, intent: fold.intent, ms: Math.round(performance.now() - t0) }, 'partition state restored from the changelog')
    return own
  }

  function onBatch(rt: TopicRuntime) {
    return async (batch: Batch, ctx: BatchContext): Promise<void> => {
      const worker = rt.workers.get(batch.partition)
      if (!worker) throw new Error(`partition ${batch.partition} of ${rt.topic} has no state open`)
      const applied = worker.store.appliedOffset()
      let records = batch.records.filter((r) => r.offset > applied)
      try {
        if (records.length === 0) {
          // Already applied (a crash between the state commit and the offset commit): commit only.
          ctx.resolveOffset(batch.records[batch.records.length - 1]!.offset)
          if (!ctx.isStale()) await ctx.commit()
          clearStall(rt.topic, batch.partition)
          return
        }
        const intent = worker.store.pendingIntent()
        if (intent) {
          // The pending range must be written again exactly (same rows, same tokens). If the log hands
          // it over in pieces (Kafka fetches by bytes; a lowered maxBatchRecords), the pieces are
          // gathered: resolved, so the log reads on, but not committed, so a crash re-reads them.
          const held = rt.held.get(batch.partition) ?? []
          const fresh = held.length > 0 && records[0]!.offset <= held[held.length - 1]!.offset ? [] : held
          const all = fresh.concat(records)
          const head = all.filter((r) => r.offset <= intent.maxOffset)
          if (head.length === 0 || head[0]!.offset !== intent.minOffset) {
            throw new Error(`batch ${all[0]!.offset}..${all[all.length - 1]!.offset} of ${rt.topic}/${batch.partition} does not start the pending range ${intent.minOffset}..${intent.maxOffset}`)
          }
          if (head[head.length - 1]!.offset !== intent.maxOffset) {
            rt.held.set(batch.partition, head)
            ctx.resolveOffset(head[head.length - 1]!.offset)
            return
          }
          rt.held.delete(batch.partition)
          logger.warn({ topic: rt.topic, partition: batch.partition, ...intent }, 'replaying a batch whose writes may have been interrupted')
          await writeChunk(rt, worker, head, ctx, batch.highWatermark)
          records = records.filter((r) => r.offset > intent.maxOffset)
        }
        if (records.length > 0) await writeChunk(rt, worker, records, ctx, batch.highWatermark)
      } catch (err) {
        totals.failures++
        metrics.batches.inc({ topic: rt.topic, result: 'failed' })
        const stall = recordStall(rt, batch, err, worker?.store.appliedOffset() ?? batch.records[0]!.offset - 1)
        logger.error({
          err, topic: rt.topic, partition: batch.partition, from: batch.records[0]?.offset, to: batch.records[batch.records.length - 1]?.offset,
          attempt: stall.attempts, cause: stall.cause, sink: stall.sink, engineCode: stall.code, engineType: stall.type, lag: statusOf(rt.topic, batch.partition).lag,
        }, 'batch failed; it will be delivered again')
        await new Promise((r) => setTimeout(r, retryDelayMs))
        throw err
      }
    }
  }

  async function consume(rt: TopicRuntime): Promise<Consumer> {
    return log.consume({
      // One group per topic: a Kafka group's assignor (kafkajs round-robin) spreads every subscribed
      // partition over all members whatever each member subscribed to, so two consumers with different
      // topics in one group would each be handed partitions of the other's topic and never read them.
      groupId: rt === events ? groupId : `${groupId}.${rt.topic}`,
      topic: rt.topic,
      maxBatchRecords,
      fromBeginning: true,
      onBatch: onBatch(rt),
      async onAssign(partitions) {
        for (const p of partitions) {
          if (rt.workers.has(p)) continue
          const store = PartitionStore.open(joinPath(stateDir, rt.topic, `p${p}`), p)
          if (deps.changelog) {
            try {
              rt.owners.set(p, await claimAndRestore(rt, p, store))
            } catch (err) {
              await store.close()
              throw err // the log retries onAssign before delivering this partition
            }
          }
          rt.workers.set(p, rt.makeWorker(store))
          statusOf(rt.topic, p).applied = store.appliedOffset()
          metrics.assigned.set({ topic: rt.topic, partition: String(p) }, 1)
        }
        logger.info({ topic: rt.topic, partitions }, 'partitions assigned')
      },
      async onRevoke(partitions) {
        for (const p of partitions) {
          const w = rt.workers.get(p)
          rt.workers.delete(p)
          rt.owners.delete(p)
          rt.held.delete(p)
          await w?.store.close()
          delete totals.topics[rt.topic]?.[p]
          stalls.delete(stallKey(rt.topic, p))
          metrics.stalled.set({ topic: rt.topic, partition: String(p) }, 0)
          metrics.assigned.set({ topic: rt.topic, partition: String(p) }, 0)
          // Its new owner reports its lag now; a stale value here would be summed next to it.
          metrics.lag.remove({ topic: rt.topic, partition: String(p) })
        }
        logger.info({ topic: rt.topic, partitions }, 'partitions revoked')
      },
    })
  }

  return {
    async start() {
      if (totals.running) return
      if (deps.icebergDir || deps.iceberg?.catalog) iceberg = await createIcebergSink({ client: clickhouse, dir: deps.icebergDir, ...deps.iceberg, logger })
      for (const rt of [events, edgeStats]) {
        await log.ensureTopic(rt.topic, deps.topicPartitions ?? 4)
        if (deps.changelog) await log.ensureTopic(changelogTopic(rt), await log.partitionCount(rt.topic))
      }
      totals.running = true
      consumers.push(await consume(events), await consume(edgeStats))
      logger.info({ groupId, database, iceberg: deps.iceberg?.catalog ? 'rest' : deps.icebergDir ? 'local' : 'off', maxBatchRecords }, 'processor started')
    },
    async stop() {
      if (!totals.running) return
      totals.running = false
      await Promise.all(consumers.splice(0).map((c) => c.stop()))
      for (const rt of [events, edgeStats]) {
        for (const [p, w] of rt.workers) {
          rt.workers.delete(p)
          rt.owners.delete(p)
          await w.store.close()
        }
      }
      logger.info({ groupId }, 'processor stopped')
    },
    status() {
      return structuredClone(totals)
    },
    health() {
      const stalled = [...stalls.values()].map((s) => ({ ...s }))
      return { status: stalled.length > 0 ? 'degraded' : 'ok', stalled }
    },
  }
}
