import { z } from 'zod'

/**
 * Identifiers travel through URLs, log keys and ClickHouse columns, and are joined with a
 * separator to build the idempotency key, so they are restricted to a small URL-safe alphabet.
 * The separator (U+001F) can therefore never occur inside an id, which keeps the key unambiguous.
 */
export const ID_PATTERN = /^[A-Za-z0-9_.:\-]{1,128}$/

export const idSchema = z.string().regex(ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 _ . : -')

/** A client-generated ULID (Crockford base32, 26 characters). */
export const ulidSchema = z.string().regex(/^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$/, 'must be a ULID')

/** A UUIDv7 (RFC 9562): 48-bit Unix ms time, version 7, variant 10, in the 8-4-4-4-12 hex form. */
export const UUIDV7_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/
export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$/

/** A client-generated event id: a ULID, or a UUIDv7 (what mobile SDKs generate). Both start with their creation time. */
export const eventIdSchema = z.string().refine((s) => ULID_PATTERN.test(s) || UUIDV7_PATTERN.test(s), 'must be a ULID or a UUIDv7')

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** The largest time a ULID's 48 bits hold (year 10889). */
const ULID_TIME_MAX = 2 ** 48 - 1

/**
 * A ULID named by its inputs instead of drawn at random: its time is `timeMs` (clamped to what a
 * ULID holds), its 80 "random" bits are 5 bits of each of `digest`'s first 16 bytes (a hash of what
 * the id stands for). The same inputs always give the same id, so a retry, another replica or a
 * reloaded pixel names the same thing, and the id still sorts and buckets by its time.
 */
export function ulidFromDigest(timeMs: number, digest: Uint8Array): string {
  if (digest.length < 16) throw new RangeError('ulidFromDigest needs at least 16 bytes of digest')
  let time = Math.min(Math.max(0, Math.floor(timeMs)), ULID_TIME_MAX)
  let head = ''
  for (let i = 0; i < 10; i++) {
    head = CROCKFORD[time % 32] + head
    time = Math.floor(time / 32)
  }
  let tail = ''
  for (let i = 0; i < 16; i++) tail += CROCKFORD[digest[i]! & 31]
  return head + tail
}

/** The creation time (epoch ms) an event id carries: a ULID's first 10 characters, a UUIDv7's first 48 bits. */
export function eventIdTimeMs(id: string): number | undefined {
  if (UUIDV7_PATTERN.test(id)) return parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
  if (!ULID_PATTERN.test(id)) return undefined
  let ms = 0
  for (const ch of id.slice(0, 10).toUpperCase()) ms = ms * 32 + CROCKFORD.indexOf(ch)
  return ms
}
