import { edgeStatsSchema } from '@adc/schemas'
import { ok, badRow, unbilled, type StepResult } from '../pipeline/result.js'
import type { RawRecord } from '../pipeline/types.js'
import type { PartitionStore } from '../state/partition-store.js'
import { scheduleExpiry, advanceWatermark } from '../state/expiry.js'
import type { EdgeStatsRow } from '../sinks/sink.js'

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
