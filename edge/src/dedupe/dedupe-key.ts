/**
 * The key a DedupeShard stores for an event: the idempotency key behind its event id's time bucket
 * (1.024 s, as a ULID's first 8 characters), so the shard can expire keys by age.
 */
import { eventIdTimeMs, UUIDV7_PATTERN } from '@adc/schemas'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const BUCKET_MS = 1024

/** A time in ms to 1.024 s, written as a ULID's first 8 characters (so it sorts as text). */
export function timeBucketOfMs(ms: number): string {
  let bucket = Math.floor(Math.max(0, ms) / BUCKET_MS)
  let out = ''
  for (let i = 0; i < 8; i++) {
    out = CROCKFORD[bucket % 32] + out
    bucket = Math.floor(bucket / 32)
  }
  return out
}

/**
 * The event id's creation time to 1.024 s as 8 characters: for a ULID exactly its first 8, for a
 * UUIDv7 its 48-bit time encoded the same way, so both forms made in one second agree.
 */
export function timeBucketOf(eventId: string): string {
  if (!UUIDV7_PATTERN.test(eventId)) return eventId.slice(0, 8).toUpperCase()
  return timeBucketOfMs(eventIdTimeMs(eventId)!)
}

/**
 * The key a DedupeShard stores for an event: its id's time bucket, then its idempotency key. The
 * time prefix makes inserts land at the right edge of the shard's B-tree (events arrive roughly in
 * time order) instead of scattering over its pages, and lets expiry delete a key range without a
 * time index. A retry carries the same event id, so it yields the same key.
 */
export function dedupeKeyOf(eventId: string, idempotencyKey: string): string {
  return timeBucketOf(eventId) + idempotencyKey
}
