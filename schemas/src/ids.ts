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
