/**
 * What the processor reports: per-partition applied offset and lag, totals since start, stalled
 * partitions (a batch that keeps failing), and the metrics behind /metrics and /healthz.
 */
import type { Logger } from 'pino'
import type { ReasonCode } from '@adc/schemas'
import type { Batch, LogRecord } from '../log/log.js'
import type { ProcessorMetrics } from '../metrics/registry.js'
import { SinkWriteError, type SinkFailure } from '../sinks/sink-errors.js'
import type { BuiltBatch } from './event-worker.js'
import { TenantViewBehindError } from './tenant-sync.js'

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
  /** The reason code of a failure that names one (`tenant_view_behind`: the tenant view did not catch up in time). */
  reason?: ReasonCode
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

/** The processor's status, totals and stalls, and the metrics that show them. */
export class ProcessorReport {
  readonly totals: ProcessorStatus = { running: false, topics: {}, events: { billable: 0, unbilled: 0, badRows: 0, pending: 0 }, batches: 0, failures: 0, lastReceivedAt: 0, lastWriteAt: 0 }
  private readonly stalls = new Map<string, StalledPartition>()

  constructor(private readonly metrics: ProcessorMetrics, private readonly logger: Logger) {}

  statusOf(topic: string, p: number): PartitionStatus {
    return ((this.totals.topics[topic] ??= {})[p] ??= { applied: -1, lag: 0 })
  }

  private stallKey(topic: string, p: number): string {
    return `${topic}\u001f${p}`
  }

  clearStall(topic: string, p: number): void {
    if (this.stalls.delete(this.stallKey(topic, p))) this.logger.info({ topic, partition: p }, 'partition written again after failed attempts')
    this.metrics.stalled.set({ topic, partition: String(p) }, 0)
  }

  /**
   * Counts a failed batch and marks the partition stalled, until a batch of it is written: its lag
   * keeps growing with the log (the high watermark of each redelivery), so a batch that keeps
   * failing shows on /metrics and /healthz instead of reading as caught up.
   */
  failed(topic: string, batch: Batch, err: unknown, applied: number): StalledPartition {
    const { metrics } = this
    this.totals.failures++
    metrics.batches.inc({ topic, result: 'failed' })
    const failure: SinkFailure = err instanceof SinkWriteError ? err.failure : { kind: 'infrastructure', message: err instanceof Error ? err.message : String(err) }
    const key = this.stallKey(topic, batch.partition)
    const prev = this.stalls.get(key)
    const stall: StalledPartition = {
      topic, partition: batch.partition, since: prev?.since ?? Date.now(), attempts: (prev?.attempts ?? 0) + 1, cause: failure.kind,
      ...(err instanceof SinkWriteError ? { sink: err.sink } : {}),
      ...(err instanceof TenantViewBehindError ? { reason: err.reason } : {}),
      ...(failure.code !== undefined ? { code: failure.code } : {}),
      ...(failure.type !== undefined ? { type: failure.type } : {}),
    }
    this.stalls.set(key, stall)
    metrics.stalled.set({ topic, partition: String(batch.partition) }, 1)
    const lag = Math.max(0, batch.highWatermark - (applied + 1))
    metrics.lag.set({ topic, partition: String(batch.partition) }, lag)
    this.statusOf(topic, batch.partition).lag = lag
    return stall
  }

  /** Counts a written batch. `reportsOnly`: edge-stats, whose "written" counts reports stored (they are not events to bill). */
  written(topic: string, records: LogRecord[], built: BuiltBatch, highWatermark: number, { reportsOnly }: { reportsOnly: boolean }): void {
    const { metrics, totals } = this
    const maxOffset = records[records.length - 1]!.offset
    const now = Date.now()
    const { counts } = built
    metrics.events.inc({ topic, outcome: reportsOnly ? 'written' : 'billable', reason: '' }, counts.billable)
    for (const [reason, n] of Object.entries(counts.unbilled)) metrics.events.inc({ topic, outcome: 'unbilled', reason }, n)
    for (const [reason, n] of Object.entries(counts.badRows)) metrics.events.inc({ topic, outcome: 'bad_row', reason }, n)
    if (counts.pending) metrics.events.inc({ topic, outcome: 'pending', reason: 'join_pending' }, counts.pending)
    metrics.batches.inc({ topic, result: 'written' })
    metrics.batchRecords.observe({ topic }, records.length)
    const lag = Math.max(0, highWatermark - (maxOffset + 1))
    metrics.lag.set({ topic, partition: String(records[0]!.partition) }, lag)
    if (built.maxReceivedAt > 0) {
      metrics.freshness.set({ topic }, Math.max(0, now - built.maxReceivedAt) / 1000)
      totals.lastReceivedAt = Math.max(totals.lastReceivedAt, built.maxReceivedAt)
    }
    if (!reportsOnly) totals.events.billable += counts.billable
    totals.events.unbilled += Object.values(counts.unbilled).reduce((a, b) => a + b, 0)
    totals.events.badRows += Object.values(counts.badRows).reduce((a, b) => a + b, 0)
    totals.events.pending += counts.pending
    totals.batches++
    totals.lastWriteAt = now
    Object.assign(this.statusOf(topic, records[0]!.partition), { applied: maxOffset, lag })
    if (built.waitingClicks !== undefined) {
      this.statusOf(topic, records[0]!.partition).waitingClicks = built.waitingClicks
      metrics.waitingClicks.set({ partition: String(records[0]!.partition) }, built.waitingClicks)
    }
    this.clearStall(topic, records[0]!.partition)
  }

  assigned(topic: string, p: number, applied: number): void {
    this.statusOf(topic, p).applied = applied
    this.metrics.assigned.set({ topic, partition: String(p) }, 1)
  }

  revoked(topic: string, p: number): void {
    delete this.totals.topics[topic]?.[p]
    this.stalls.delete(this.stallKey(topic, p))
    this.metrics.stalled.set({ topic, partition: String(p) }, 0)
    this.metrics.assigned.set({ topic, partition: String(p) }, 0)
    // Its new owner reports its lag now; a stale value here would be summed next to it.
    this.metrics.lag.remove({ topic, partition: String(p) })
  }

  status(): ProcessorStatus {
    return structuredClone(this.totals)
  }

  health(): ProcessorHealth {
    const stalled = [...this.stalls.values()].map((s) => ({ ...s }))
    return { status: stalled.length > 0 ? 'degraded' : 'ok', stalled }
  }
}
