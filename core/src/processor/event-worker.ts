import type { Channel } from '@adc/schemas'
import type { LogRecord } from '../log/log.js'
import { createPipeline, type Pipeline, type PipelineOutcome } from '../pipeline/pipeline.js'
import type { BadRowResult, StepResult } from '../pipeline/result.js'
import { createDecodeStep } from '../pipeline/steps/decode-step.js'
import { createCampaignStep } from '../pipeline/steps/campaign-step.js'
import { createDedupeStep } from '../pipeline/steps/dedupe-step.js'
import { createIvtStep } from '../pipeline/steps/ivt-step.js'
import { createJoinStage, type JoinStage } from '../pipeline/steps/join-step.js'
import { createSinkStep } from '../pipeline/steps/sink-step.js'
import type { Decoded, Deduped, Joined, RawRecord, Scored } from '../pipeline/types.js'
import { BatchBuilder, type OutcomeCounts } from '../sinks/batch-builder.js'
import { RowBinaryWriter } from '../sinks/row-binary-writer.js'
import type { SinkBatch } from '../sinks/sink.js'
import { sweepExpired } from '../state/expiry.js'
import type { PartitionStore } from '../state/partition-store.js'
import type { BurstLimits } from '../ivt/rules.js'
import type { TenantSync } from './tenant-sync.js'

export interface EventWorkerOptions {
  /** Dedupe key lifetime after the edge received the event. @default 25 h */
  dedupeTtlMs?: number
  joinWindowsMs?: Record<Channel, number>
  /** @default 24 h */
  joinLatenessMs?: number
  ivtLimits?: BurstLimits
  modelVersion?: string
  /**
   * Whether a campaign is booked with the publisher; events for any other campaign, or of another
   * publisher, are kept unbilled as `unknown_campaign`.
   * core/src/main.ts answers from the tenant store. @default every campaign is booked
   */
  isBookedCampaign?: (campaignId: string, publisherId: string) => boolean
  /**
   * Catches this replica's tenant view up before an event is called `unknown_campaign` (see
   * tenant-sync.ts), once per batch at most. @default the verdict is given on the view as it is
   */
  tenantSync?: TenantSync
  /** Keep events_raw rows as objects in built batches (a sink reads them: Iceberg). @default true */
  eventRowObjects?: boolean
}

export interface BuiltBatch {
  batch: SinkBatch
  counts: OutcomeCounts
  maxReceivedAt: number
  /** Clicks waiting for their impression after this batch (accepted, not yet written). */
  waitingClicks?: number
}

/** Turns a batch of records of one partition into sink rows, reading and buffering partition state. */
export interface PartitionWorker {
  readonly store: PartitionStore
  /**
   * `rejected`: records a sink refused for their content (offset → the engine's message). They
   * become `sink_rejected` bad rows, touch no state, and the rest of the batch is built as if they
   * had never been there, so state, rollups and raw rows agree.
   */
  build(topic: string, records: LogRecord[], rejected?: ReadonlyMap<number, string>): Promise<BuiltBatch>
}

/** The bad row of a record a sink refused (see PartitionWorker.build). */
export function sinkRejected(rec: LogRecord, message: string): BadRowResult & { lastStep: string } {
  return { kind: 'bad_row', reason: 'sink_rejected', error: message, payload: rec.value, step: 'sinkStep', lastStep: 'sinkStep' }
}

/**
 * The `ad-events` pipeline of one partition: decode → campaign → dedupe → join → IVT → sink, plus the join's
 * released and expired clicks, which continue through IVT → sink (or straight to the sink as
 * orphans). All state reads and writes go through the partition store's batch overlay.
 */
export function createEventWorker(store: PartitionStore, options: EventWorkerOptions = {}): PartitionWorker {
  let builder: BatchBuilder | undefined
  // One events_raw buffer for every batch of this partition: a batch's bytes are written (or its
  // probe answered) before the worker builds the next one (batch-write.ts), so none outlives it.
  // It stays as large as the partition's largest batch of rows (about 8.4 MB for 20k records) while
  // the partition is assigned here.
  const rows = new RowBinaryWriter(1 << 16)
  const current = (): BatchBuilder => builder!
  const join: JoinStage<Deduped> = createJoinStage<Deduped>({ store, windowsMs: options.joinWindowsMs, latenessMs: options.joinLatenessMs })
  const ivt = createIvtStep<Joined>({ store, limits: options.ivtLimits, modelVersion: options.modelVersion })
  const sink = createSinkStep<Scored>(current)
  // Campaign before dedupe: an event for a campaign nobody booked is set aside before it touches any
  // state, so it is no delivery, impression or click for another event (the final join does the same).
  const main: Pipeline<RawRecord, Scored> = createPipeline<RawRecord, Decoded>(createDecodeStep())
    .pipe(createCampaignStep<Decoded>({ isBooked: options.isBookedCampaign ?? (() => true), ...(options.tenantSync ? { settle: options.tenantSync.settle } : {}) }))
    .pipe(createDedupeStep<Decoded>({ store, ttlMs: options.dedupeTtlMs }))
    .pipe(join.step)
    .pipe(ivt)
    .pipe(sink)
  const tail: Pipeline<Joined, Scored> = createPipeline<Joined, Scored>(ivt).pipe(sink)

  async function finish(result: StepResult<Joined>): Promise<void> {
    if (result.kind === 'ok') {
      const ran = tail.run(result.value)
      const out = ran instanceof Promise ? await ran : ran
      if (out.kind !== 'ok') current().add(out)
    } else {
      current().add({ ...result, lastStep: 'joinStep' } as PipelineOutcome<Joined>)
    }
  }

  return {
    store,
    async build(topic, records, rejected) {
      const first = records[0]!
      const last = records[records.length - 1]!
      builder = new BatchBuilder(topic, first.partition, first.offset, last.offset, Date.now(), options.eventRowObjects ?? true, rows)
      options.tenantSync?.newBatch()
      for (const rec of records) {
        const refused = rejected?.get(rec.offset)
        if (refused !== undefined) {
          const out = sinkRejected(rec, refused)
          builder.addBadRow({ topic, partition: rec.partition, offset: rec.offset }, rec.timestamp, out)
          builder.add(out as PipelineOutcome<Scored>)
          continue
        }
        const raw: RawRecord = { ref: { topic, partition: rec.partition, offset: rec.offset }, payload: rec.value, appendedAt: rec.timestamp }
        // The steps answer synchronously (LMDB reads are synchronous): no await, no tick per event.
        const ran = main.run(raw)
        const out = ran instanceof Promise ? await ran : ran
        if (out.kind === 'bad_row') builder.addBadRow(raw.ref, raw.appendedAt, out)
        if (out.kind !== 'ok') builder.add(out as PipelineOutcome<Scored>)
        for (const r of join.drainReleased()) await finish(r)
      }
      for (const r of join.expire()) await finish(r)
      sweepExpired(store)
      const b = builder
      builder = undefined
      return { batch: b.build(), counts: b.counts, maxReceivedAt: b.maxReceivedAt, waitingClicks: join.waiting() }
    },
  }
}
