import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ulid } from 'ulid'
import { eventIdSchema, eventIdTimeMs, ulidFromDigest } from './ids.js'
import { impressionEventSchema } from './events.js'

/** A UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 12 + 62 random bits, variant 10. */
function uuidv7(ms: number, rand: () => number = Math.random): string {
  const hex = (n: number, width: number) => Math.floor(n).toString(16).padStart(width, '0')
  const t = hex(ms, 12)
  const r = (digits: number) => Array.from({ length: digits }, () => hex(rand() * 16, 1)).join('')
  return `${t.slice(0, 8)}-${t.slice(8)}-7${r(3)}-${'89ab'[Math.floor(rand() * 4)]}${r(3)}-${r(12)}`
}

const now = Date.UTC(2026, 10, 23, 12, 0, 0)
const base = { ts: now, adId: 'a', campaignId: 'c', publisherId: 'p', requestId: 'r', impressionId: 'i' }

describe('event ids', () => {
  it('accepts a ULID and a UUIDv7 (what mobile SDKs generate), in either case', () => {
    const u = uuidv7(now)
    for (const eventId of [ulid(now), ulid(now).toLowerCase(), u, u.toUpperCase()]) {
      expect({ eventId, ok: impressionEventSchema.safeParse({ ...base, eventId }).success }).toEqual({ eventId, ok: true })
    }
  })

  it('refuses other UUID versions, a UUID without dashes and a UUID with a wrong variant', () => {
    const u = uuidv7(now)
    for (const eventId of [
      '3b241101-e2bb-4255-8caf-4136c566a962', // v4
      u.replace(/-/g, ''),
      `${u.slice(0, 19)}c${u.slice(20)}`, // variant 110
      `${u.slice(0, 14)}8${u.slice(15)}`, // version 8
      `${u}0`,
    ]) {
      expect({ eventId, ok: eventIdSchema.safeParse(eventId).success }).toEqual({ eventId, ok: false })
    }
  })

  it('reads the creation time of either form to the millisecond', () => {
    // From 1: `ulid(0)` takes 0 as "no time given" and uses the clock.
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 48 - 1 }), (ms) => {
      expect(eventIdTimeMs(ulid(ms))).toBe(ms)
      expect(eventIdTimeMs(ulid(ms).toLowerCase())).toBe(ms)
      expect(eventIdTimeMs(uuidv7(ms))).toBe(ms)
      expect(eventIdTimeMs(uuidv7(ms).toUpperCase())).toBe(ms)
    }))
    expect(eventIdTimeMs('not-an-id')).toBeUndefined()
  })
})

describe('ulidFromDigest', () => {
  it('is a valid event id carrying its time, the same for the same inputs, different for another digest', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.uint8Array({ minLength: 16, maxLength: 32 }), (ms, digest) => {
      const id = ulidFromDigest(ms, digest)
      expect(eventIdSchema.safeParse(id).success).toBe(true)
      expect(eventIdTimeMs(id)).toBe(ms)
      expect(ulidFromDigest(ms, digest)).toBe(id)
      const other = Uint8Array.from(digest, (b, i) => (i === 0 ? b ^ 1 : b))
      expect(ulidFromDigest(ms, other)).not.toBe(id)
    }))
  })

  it('clamps a time outside what a ULID holds, and refuses a digest shorter than 16 bytes', () => {
    const digest = new Uint8Array(16).fill(7)
    expect(eventIdTimeMs(ulidFromDigest(9e15, digest))).toBe(2 ** 48 - 1)
    expect(eventIdTimeMs(ulidFromDigest(-5, digest))).toBe(0)
    expect(() => ulidFromDigest(0, new Uint8Array(15))).toThrow(RangeError)
  })
})
