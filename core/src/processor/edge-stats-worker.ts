/**
 * The `edge-stats` partition worker, beside the event worker (./event-worker.ts): decodes the edge's
 * per-publisher, per-minute reports (schemas/src/edge-stats.ts) into edge_stats_minute rows and drops
 * a report the edge sent twice. The processor writes its batches through the same ordered write.
 */
import { edgeStatsSchema } from '@adc/schemas'
import { ok, badRow, unbilled, type StepResult } from '../pipeline/result.js'
import type { RawRecord } from '../pipeline/types.js'
import type { PartitionStore } from '../state/partition-store.js'
import { scheduleExpiry, advanceWatermark, sweepExpired } from '../state/expiry.js'
import { BatchBuilder } from '../sinks/batch-builder.js'
import type { EdgeStatsRow } from '../sinks/sink.js'
import { sinkRejected, type BuiltBatch, type PartitionWorker } from './event-worker.js'

/**
 * Decodes one edge-stats record and drops a report the edge sent twice (same batchId, e.g. a spool
 * retry), using the same first-seen-offset rule as event dedupe.
 */
export function decodeEdgeStats(store: PartitionStore, raw: RawRecord): StepResult<EdgeStatsRow> {
  let json: unknown
  try {
    json = JSON.parse(raw.payload)
  } catch (err) {
    return badRow('bad_edge_stats', `not JSON: ${(err as Error).message}`, raw.payload, 'edgeStatsStep')
  }
  const parsed = edgeStatsSchema.safeParse(json)
  if (!parsed.success) return badRow('bad_edge_stats', parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), raw.payload, 'edgeStatsStep')
  const s = parsed.data
  const row: EdgeStatsRow = { minute: Math.floor(s.minute / 60_000) * 60, publisher_id: s.publisherId, received: s.received, accepted: s.accepted, rejected: s.rejected, duplicate: s.duplicate, rejected_by_reason: s.rejectedByReason }
  const key = `e:${s.batchId}`
  const first = store.get<number>(key)
  if (first !== undefined && first !== raw.ref.offset) return unbilled(row, 'duplicate_delivery')
  if (first === undefined) {
    store.put(key, raw.ref.offset)
    scheduleExpiry(store, s.minute + 25 * 60 * 60_000, key)
  }
  advanceWatermark(store, s.minute)
  return ok(row)
}

/** The edge-stats worker of one partition: one row per report, duplicates unbilled, refused records as bad rows. */
export function createEdgeStatsWorker(store: PartitionStore): PartitionWorker {
  return {
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
  }
}
