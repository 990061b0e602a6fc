import { ulid } from 'ulid'
import { EDGE_STATS_TOPIC, type EdgeStatsRecord } from '@adc/schemas'
import type { Env } from '../env.js'
import { forward, proxyOptions, type ProxyRecord } from './forwarder.js'
import type { EventResult } from './prepare.js'
import type { Settings } from '../settings.js'
import { spoolFor } from './spool-stub.js'
import { FlushSlot } from './flush-slot.js'

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
  private readonly slot = new FlushSlot()

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
    if (this.pending.size === 0 || !(await this.slot.waitTurn(delayMs))) return
    const records = this.take()
    if (records.length > 0) await send(records)
  }
}

/** This isolate's edge-stats, summed per publisher and minute (see `StatsBatcher`). */
const edgeStats = new StatsBatcher()

/**
 * Counts a request's outcomes in edge-stats: each accepted, duplicate and rejected event exactly
 * once. For `waitUntil`: the counts leave in this isolate's next stats call (at most
 * `statsFlushMs` later); what the proxy does not take goes to the publisher's Spool like any event.
 */
export function sendStats(env: Env, settings: Settings, publisherId: string, results: EventResult[], receivedAt: number): Promise<void> {
  edgeStats.add(publisherId, results, receivedAt)
  return edgeStats.flush(settings.statsFlushMs, (records) => deliverStats(env, settings, records))
}

async function deliverStats(env: Env, settings: Settings, records: ProxyRecord[]): Promise<void> {
  const sent = await forward(EDGE_STATS_TOPIC, records, (r) => r, { ...proxyOptions(settings), attempts: settings.forwardAttempts })
  const byPublisher = new Map<string, ProxyRecord[]>()
  for (const { item } of sent.undelivered) byPublisher.set(item.key, [...(byPublisher.get(item.key) ?? []), item])
  await Promise.all([...byPublisher].map(async ([publisherId, list]) => {
    try {
      await spoolFor(env, publisherId).enqueue(list.map((record) => ({ topic: EDGE_STATS_TOPIC, ...record })))
    } catch (err) {
      console.error('edge-stats record could not be delivered or spooled', publisherId, err)
    }
  }))
}
