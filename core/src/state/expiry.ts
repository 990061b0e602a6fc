import { pad } from './keys.js'
import { expiryKeys, type PartitionStore } from './partition-store.js'

/**
 * The partition watermark: the largest edge `receivedAt` seen in the partition. It is event data, not
 * the wall clock, so a replay of the same records computes the same expiries and the same orphans.
 */
export function watermark(store: PartitionStore): number {
  return store.watermark()
}

export function advanceWatermark(store: PartitionStore, receivedAt: number): void {
  store.advanceWatermark(receivedAt)
}

/** Schedules `key` for deletion once the watermark passes `dueMs` (minute granularity). */
export function scheduleExpiry(store: PartitionStore, dueMs: number, key: string): void {
  store.expireAt(dueMs, key)
}

/**
 * Deletes keys whose expiry minute the watermark has passed, at most about `limit` keys per call
 * (bounded work per batch; the rest goes with the next batch), and the delivery keys' and impression
 * states' hours whose expiry it passed (whole hours, delivery-index.ts and impression-index.ts).
 * Returns how many scheduled keys were deleted.
 */
export function sweepExpired(store: PartitionStore, limit = 50_000): number {
  const wm = watermark(store)
  store.deliveries.sweep(wm)
  store.bursts.sweep(wm)
  store.impressions.sweep(wm)
  const end = `x:${pad(wm / 60_000, 10)}:`
  let n = 0
  for (const [bucket, value] of store.range<string | string[]>('x:', end, 1000)) {
    const keys = expiryKeys(value)
    for (const k of keys) {
      // Only schedule entries of an older build list impression states (the index expires them by
      // hour since): one seen again after this schedule carries its later expiry (`ex`).
      if (k.startsWith('i:')) {
        const ex = store.get<{ ex?: number }>(k)?.ex
        if (ex !== undefined && ex > wm) continue
      }
      store.remove(k)
    }
    store.remove(bucket)
    n += keys.length
    if (n >= limit) break
  }
  return n
}
