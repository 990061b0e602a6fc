/**
 * Coalesces DedupeShard confirms inside one isolate: the keys of every request that finished within
 * `delayMs` of each other reach each shard as one `confirm` call (one SQLite statement and commit)
 * instead of one call per request.
 */

import { FlushSlot } from '../ingest/flush-slot.js'

/**
 * Pending confirms per shard. Exactly once, like the StatsBatcher: `add` puts a request's durable
 * keys in the pending lists; the first request to claim the isolate's `FlushSlot` becomes the flusher (a flusher whose request was cancelled is taken over once stale): its
 * own `waitUntil` promise sleeps `delayMs`, takes every list (keys added meanwhile by any request)
 * and sends one call per shard, so each key leaves in exactly one call. A later request finds the
 * flag cleared and schedules the next flush. No promise or I/O crosses request contexts: each call
 * runs in the flusher's own request.
 *
 * Safe to delay: every key added is a stored event's, so until its confirm has landed this isolate
 * answers `has(key)` itself, and a retry reaching the same isolate inside the delay is still a
 * duplicate (a client's immediate retry usually does). A retry reaching another isolate inside the
 * delay, or a flush that fails or never runs (isolate evicted), finds the key unconfirmed: it is
 * forwarded again and core's exact dedupe drops it. A 409 still only answers a stored event.
 */
export class ConfirmBatcher {
  private pending = new Map<number, string[]>()
  /** Keys added and not yet settled by their confirm call (pending or in flight). */
  private readonly unsettled = new Set<string>()
  private readonly slot = new FlushSlot()

  /** Whether `key` is a stored event's whose confirm has not settled yet in this isolate. */
  has(key: string): boolean {
    return this.unsettled.has(key)
  }

  add(shard: number, keys: readonly string[]): void {
    if (keys.length === 0) return
    for (const k of keys) this.unsettled.add(k)
    const list = this.pending.get(shard)
    if (list) list.push(...keys)
    else this.pending.set(shard, [...keys])
  }

  /** Takes every pending list and clears them. */
  take(): Map<number, string[]> {
    const taken = this.pending
    this.pending = new Map()
    return taken
  }

  /**
   * For the request's `waitUntil`: resolves at once when another request will flush these keys,
   * else sleeps `delayMs`, takes them and sends one call per shard. Never rejects: a shard that
   * fails keeps its keys unconfirmed (see the class).
   */
  async flush(delayMs: number, send: (shard: number, keys: string[]) => Promise<unknown>): Promise<void> {
    if (this.pending.size === 0 || !(await this.slot.waitTurn(delayMs))) return
    await Promise.all([...this.take()].map(async ([shard, keys]) => {
      try {
        await send(shard, keys)
      } catch {
        // unconfirmed keys are safe; see the class
      } finally {
        for (const k of keys) this.unsettled.delete(k)
      }
    }))
  }
}
