/**
 * The processor's consumer lifecycle (createProcessor, below). The modules it calls: event-worker.ts and
 * edge-stats-worker.ts build a partition's rows, batch-write.ts writes a batch exactly once,
 * state/ownership.ts claims, fences and snapshots a partition's changelog, status.ts reports.
 */
import { join as joinPath } from 'node:path'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Registry } from 'prom-client'
import type { Logger } from 'pino'
import { EDGE_STATS_TOPIC, EVENTS_TOPIC, stateChangelogTopic } from '@adc/schemas'
import type { Batch, BatchContext, Consumer, Log, LogRecord } from '../log/log.js'
import { processorMetrics, type ProcessorMetrics } from '../metrics/registry.js'
import { createIcebergSink, type IcebergSinkOptions } from '../sinks/iceberg-sink.js'
import { lakeReadsRowBinary } from '../lake/table.js'
import { isS3Location } from '../lake/parquet.js'
import { changelogTopicFor } from '../state/changelog.js'
import { PartitionOwnership } from '../state/ownership.js'
import { PartitionStore } from '../state/partition-store.js'
import { createBatchWriter, crashPointsFromEnv, type CrashPoint } from './batch-write.js'
import { createEdgeStatsWorker } from './edge-stats-worker.js'
import { createEventWorker, type EventWorkerOptions, type PartitionWorker } from './event-worker.js'
import { ProcessorReport, type ProcessorHealth, type ProcessorStatus } from './status.js'
import { createTenantSync, type TenantView } from './tenant-sync.js'

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
   * State changelog, for several processors sharing the partitions (see state/ownership.ts and the handoff argument below): each batch's
   * intent and state changes go to this topic first, and a processor that takes a partition restores
   * its state from it before the first batch. Unset: state is local only (one processor).
   * @default stateChangelogTopic(groupId) for ad-events (`adc-state-changelog` for the default group),
   * with `.edge-stats` appended for edge-stats.
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
  /**
   * This replica's tenant view: before an event is called `unknown_campaign` the view catches up
   * with the tenant topic (once per batch, at most `tenantSyncTimeoutMs`; tenant-sync.ts), so a
   * campaign booked through another replica a moment before is never missed. Unset: the verdict is
   * given at once (`isBookedCampaign` as it answers).
   */
  tenants?: TenantView
  /** Longest a batch waits for the tenant view to catch up before it fails and is retried. @default 10_000 */
  tenantSyncTimeoutMs?: number
  /** Source topic names (tests on a shared broker). @default ad-events, edge-stats */
  topics?: { events?: string; edgeStats?: string }
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
  /** This processor's hold on each assigned partition's changelog (changelog on). */
  owners: Map<number, PartitionOwnership>
  /** Records of a pending range received so far, per partition, while it arrives in pieces. */
  held: Map<number, LogRecord[]>
  makeWorker(store: PartitionStore): PartitionWorker
}

/**
 * The processor's consumer lifecycle: consumes `ad-events` (event worker: the pipeline) and
 * `edge-stats` (edge-stats worker) with one consumer group each; on assignment opens each
 * partition's local state, and with the changelog on claims the partition and restores its state
 * (state/ownership.ts); hands each batch to the ordered exactly-once write (batch-write.ts), after
 * skipping what is already applied and re-forming a pending intent's range; reports status, lag
 * and stalled partitions.
 *
 * Backpressure: one batch at a time per topic; the log is read again only after the batch committed.
 *
 * Why counts stay exact when partition p moves from processor A to B (B's state = the changelog's
 * fold up to B's claim; crash points as named in batch-write.ts):
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
 * - A new machine (no local state): it folds the whole changelog from offset 0 (bounded by snapshots).
 * Determinism this relies on: verdicts depend only on the state and the records (the watermark is
 * event data, not the clock), and the changelog carries values as JSON, which the state uses only
 * for plain numbers, strings, arrays and objects.
 */
export function createProcessor(deps: ProcessorDeps): Processor {
  const { log, clickhouse, database, stateDir, groupId, logger, maxBatchRecords = 20_000, retryDelayMs = 200 } = deps
  const metrics: ProcessorMetrics = processorMetrics(deps.registry)
  const crash = deps.crashPoint ?? crashPointsFromEnv()
  const writer = createBatchWriter({ clickhouse, database, dedupTokens: deps.dedupTokens, crash, metrics, logger })
  const consumers: Consumer[] = []
  const report = new ProcessorReport(metrics, logger)
  const totals = report.totals

  // A lake configured on S3 (warehouse or catalog location): a ClickHouse server writes its data files
  // from the batch's RowBinary bytes, so no row objects are kept for it (lake/table.ts).
  const lakeOnS3 = deps.iceberg?.s3 !== undefined && [deps.iceberg.warehouse, deps.iceberg.catalog?.location].some((l) => l !== undefined && isS3Location(l))
  const eventRowObjects = !!(deps.icebergDir || deps.iceberg?.catalog) && !lakeReadsRowBinary(clickhouse, undefined, lakeOnS3)
  const tenantSync = (partition: number) => deps.tenants && createTenantSync({
    tenants: deps.tenants, timeoutMs: deps.tenantSyncTimeoutMs, logger: logger.child({ component: 'tenant-sync', partition }),
    count: (outcome) => metrics.tenantSync.inc({ outcome }),
  })
  const events: TopicRuntime = {
    topic: deps.topics?.events ?? EVENTS_TOPIC, workers: new Map(), owners: new Map(), held: new Map(),
    makeWorker: (store) => createEventWorker(store, { ...deps, eventRowObjects, tenantSync: tenantSync(store.partition) }),
  }
  const edgeStats: TopicRuntime = {
    topic: deps.topics?.edgeStats ?? EDGE_STATS_TOPIC,
    workers: new Map(),
    owners: new Map(),
    held: new Map(),
    makeWorker: createEdgeStatsWorker,
  }

  async function writeChunk(rt: TopicRuntime, worker: PartitionWorker, records: LogRecord[], ctx: BatchContext, highWatermark: number): Promise<void> {
    const built = await writer.write({ topic: rt.topic, worker, own: rt.owners.get(records[0]!.partition) }, records, ctx)
    report.written(rt.topic, records, built, highWatermark, { reportsOnly: rt === edgeStats })
  }

  const changelogTopic = (rt: TopicRuntime): string => changelogTopicFor(deps.changelog?.topic ?? stateChangelogTopic(groupId), rt.topic, events.topic)

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
          report.clearStall(rt.topic, batch.partition)
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
        const stall = report.failed(rt.topic, batch, err, worker?.store.appliedOffset() ?? batch.records[0]!.offset - 1)
        logger.error({
          err, topic: rt.topic, partition: batch.partition, from: batch.records[0]?.offset, to: batch.records[batch.records.length - 1]?.offset,
          attempt: stall.attempts, cause: stall.cause, sink: stall.sink, engineCode: stall.code, engineType: stall.type, lag: report.statusOf(rt.topic, batch.partition).lag,
        }, 'batch failed; it will be delivered again')
        await new Promise((r) => setTimeout(r, retryDelayMs))
        throw err
      }
    }
  }

  /** Gives a partition up: its worker, claim and held records dropped, its state closed, reported revoked. */
  async function release(rt: TopicRuntime, p: number): Promise<void> {
    const w = rt.workers.get(p)
    rt.workers.delete(p)
    rt.owners.delete(p)
    rt.held.delete(p)
    await w?.store.close()
    report.revoked(rt.topic, p)
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
        // All or nothing: the log takes a failed onAssign as none of these partitions assigned (it
        // retries them all, and revokes none of them), so the ones this call did open are closed
        // again before the error goes up. Else a rebalance in between would leave this processor
        // holding (and reporting) a partition another one took.
        const opened: number[] = []
        try {
          for (const p of partitions) {
            if (rt.workers.has(p)) continue
            const store = PartitionStore.open(joinPath(stateDir, rt.topic, `p${p}`), p)
            if (store.upgraded) logger.info({ topic: rt.topic, partition: p, ...store.upgraded }, 'partition state upgraded to the current format')
            if (deps.changelog) {
              try {
                rt.owners.set(p, await PartitionOwnership.claim({
                  log, logger, changelogTopic: changelogTopic(rt), sourceTopic: rt.topic, restore: deps.changelog.restore,
                  snapshotMinChars: deps.changelog.snapshotMinChars, snapshotMaxAgeMs: deps.changelog.snapshotMaxAgeMs,
                }, p, store))
              } catch (err) {
                await store.close()
                throw err // the log retries onAssign before delivering this partition
              }
            }
            rt.workers.set(p, rt.makeWorker(store))
            opened.push(p)
          }
        } catch (err) {
          for (const p of opened) await release(rt, p)
          throw err
        }
        // Reported once the whole call holds: while it may still fail part-way, a partition it opened
        // is not this processor's yet (status and metrics never show one held that is then given back).
        for (const p of opened) report.assigned(rt.topic, p, rt.workers.get(p)!.store.appliedOffset())
        logger.info({ topic: rt.topic, partitions }, 'partitions assigned')
      },
      async onRevoke(partitions) {
        for (const p of partitions) await release(rt, p)
        logger.info({ topic: rt.topic, partitions }, 'partitions revoked')
      },
    })
  }

  return {
    async start() {
      if (totals.running) return
      if (deps.icebergDir || deps.iceberg?.catalog) writer.useIceberg(await createIcebergSink({ client: clickhouse, dir: deps.icebergDir, ...deps.iceberg, logger }))
      for (const rt of [events, edgeStats]) {
        await log.ensureTopic(rt.topic, deps.topicPartitions ?? 4)
        // Retained: an idle partition's changelog holds one snapshot, written once; Kafka's default
        // retention (7 days) would delete it, and the partition could then not be handed over.
        if (deps.changelog) await log.ensureTopic(changelogTopic(rt), await log.partitionCount(rt.topic), { retained: true })
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
      await writer.close()
      logger.info({ groupId }, 'processor stopped')
    },
    status() {
      return report.status()
    },
    health() {
      return report.health()
    },
  }
}
