import { ulid } from 'ulid'
import type { EdgeStatsRecord } from '@adc/schemas'
import type { ProxyRecord } from './forwarder.js'

/** The outcome of one event, as far as edge-stats counts it (`failed`/`queued` are not counted). */
export interface CountedResult {
  status: string
  code?: string
}

interface Tally {
  publisherId: string
  minute: number
  accepted: number
  duplicate: number
  rejected: number
  rejectedByReason: Record<string, number>
}

/**
 * Sums edge-stats per publisher and minute inside one isolate and sends them as one REST proxy
 * call every `delayMs`, instead of one call per request (the REST proxy v2 takes one topic per
 * call, so they cannot ride with the events).
 *
 * Exactly once: `add` puts a request's counts in the pending tally; the first request to find no
 * flush scheduled becomes the flusher: its own `waitUntil` promise sleeps `delayMs`, takes the
 * whole tally (every count added meanwhile, by any request) and sends it, so each count leaves in
 * exactly one record. A later request finds the flag cleared and schedules the next flush. No
 * promise or I/O crosses request contexts (workerd forbids that): each send runs in the flusher's
 * own request, kept alive by its `waitUntil`. The caller's `send` spools what the proxy refuses,
 * like any event; a record that reached the log twice (a Spool retry) is dropped by core by its
 * `batchId`.
 */
export class StatsBatcher {
  private pending = new Map<string, Tally>()
  private scheduled = false

  add(publisherId: string, results: readonly CountedResult[], receivedAt: number): void {
    const minute = Math.floor(receivedAt / 60_000) * 60_000
    const id = `${publisherId}\u001f${minute}`
    let t = this.pending.get(id)
    for (const r of results) {
      if (r.status !== 'accepted' && r.status !== 'duplicate' && r.status !== 'rejected') continue
      if (!t) {
        t = { publisherId, minute, accepted: 0, duplicate: 0, rejected: 0, rejectedByReason: {} }
        this.pending.set(id, t)
      }
      if (r.status === 'accepted') t.accepted++
      else if (r.status === 'duplicate') t.duplicate++
      else {
        t.rejected++
        if (r.code) t.rejectedByReason[r.code] = (t.rejectedByReason[r.code] ?? 0) + 1
      }
    }
  }

  /** Takes every pending tally as edge-stats records (the shared contract) and clears them. */
  take(now = Date.now()): ProxyRecord[] {
    const records: ProxyRecord[] = []
    for (const t of this.pending.values()) {
      const value: EdgeStatsRecord = {
        v: 1, kind: 'edge_stats', batchId: ulid(now), publisherId: t.publisherId, minute: t.minute,
        received: t.accepted + t.duplicate + t.rejected, accepted: t.accepted, duplicate: t.duplicate, rejected: t.rejected,
        rejectedByReason: t.rejectedByReason,
      }
      records.push({ key: t.publisherId, value })
    }
    this.pending = new Map()
    return records
  }

  /**
   * For the request's `waitUntil`: resolves at once when another request will flush these counts,
   * else sleeps `delayMs`, takes the tally and awaits `send`.
   */
  async flush(delayMs: number, send: (records: ProxyRecord[]) => Promise<void>): Promise<void> {
    if (this.scheduled || this.pending.size === 0) return
    this.scheduled = true
    try {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs))
    } finally {
      this.scheduled = false
    }
    const records = this.take()
    if (records.length > 0) await send(records)
  }
}
