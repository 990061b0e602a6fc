import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ulid } from 'ulid'
import { checkClock, clickEventSchema, impressionEventSchema, typedEventSchema, MAX_EVENT_AGE_MS } from './events.js'
import { envelopeSchema } from './envelope.js'
import { ID_PATTERN } from './ids.js'
import { REASONS, isReasonCode } from './reasons.js'

const idArb = fc.stringMatching(ID_PATTERN)
const now = Date.UTC(2026, 10, 23, 12, 0, 0)

const impressionArb = fc.record({
  eventId: fc.constant(null).map(() => ulid()),
  ts: fc.integer({ min: now - 1000, max: now }),
  adId: idArb, campaignId: idArb, publisherId: idArb, requestId: idArb, impressionId: idArb,
  channel: fc.option(fc.constantFrom('web', 'app', 'ctv', 's2s'), { nil: undefined }),
  geo: fc.option(fc.constantFrom('US', 'DE', 'FR'), { nil: undefined }),
  viewable: fc.option(fc.boolean(), { nil: undefined }),
}, { requiredKeys: ['eventId', 'ts', 'adId', 'campaignId', 'publisherId', 'requestId', 'impressionId'] })

describe('event schemas', () => {
  it('round-trips any valid impression through JSON unchanged', () => {
    fc.assert(fc.property(impressionArb, (ev) => {
      const parsed = impressionEventSchema.parse(JSON.parse(JSON.stringify(ev)))
      expect(impressionEventSchema.parse(JSON.parse(JSON.stringify(parsed)))).toEqual(parsed)
    }))
  })

  it('normalises ISO timestamps to epoch ms', () => {
    const ev = impressionEventSchema.parse({ eventId: ulid(), ts: '2026-11-23T12:00:00Z', adId: 'a', campaignId: 'c', publisherId: 'p', requestId: 'r', impressionId: 'i' })
    expect(ev.ts).toBe(now)
  })

  it('rejects missing fields, wrong types and unknown fields with a path', () => {
    const base = { eventId: ulid(), ts: now, adId: 'a', campaignId: 'c', publisherId: 'p', requestId: 'r', impressionId: 'i' }
    const missing = impressionEventSchema.safeParse({ ...base, adId: undefined })
    expect(missing.success).toBe(false)
    expect(missing.error?.issues[0]?.path).toEqual(['adId'])
    expect(impressionEventSchema.safeParse({ ...base, ts: 'yesterday' }).success).toBe(false)
    expect(impressionEventSchema.safeParse({ ...base, ts: String(now) }).success).toBe(false)
    expect(impressionEventSchema.safeParse({ ...base, extra: 1 }).success).toBe(false)
    expect(clickEventSchema.safeParse(base).success).toBe(false)
    expect(clickEventSchema.safeParse({ ...base, clickId: 'k1' }).success).toBe(true)
  })

  it('discriminates beacon events by type', () => {
    const base = { eventId: ulid(), ts: now, adId: 'a', campaignId: 'c', publisherId: 'p', requestId: 'r', impressionId: 'i' }
    expect(typedEventSchema.safeParse({ ...base, type: 'impression' }).success).toBe(true)
    expect(typedEventSchema.safeParse({ ...base, type: 'click' }).success).toBe(false)
    expect(typedEventSchema.safeParse({ ...base, type: 'view' }).success).toBe(false)
  })

  it('applies the clock rules: 5 minutes ahead, 24 hours behind', () => {
    expect(checkClock(now + 5 * 60_000, now)).toBe('ok')
    expect(checkClock(now + 5 * 60_000 + 1, now)).toBe('clock_skew_future')
    expect(checkClock(now - MAX_EVENT_AGE_MS, now)).toBe('ok')
    expect(checkClock(now - MAX_EVENT_AGE_MS - 1, now)).toBe('clock_skew_past')
  })
})

describe('envelope v1', () => {
  it('round-trips a generated envelope through JSON and its schema', () => {
    fc.assert(fc.property(impressionArb, fc.constantFrom('new', 'skipped' as const), (ev, dedupe) => {
      const env = { v: 1, type: 'impression', key: 'a'.repeat(32), receivedAt: now, event: impressionEventSchema.parse(ev), edge: { dedupe, source: 'batch' }, client: {} }
      const parsed = envelopeSchema.parse(JSON.parse(JSON.stringify(env)))
      expect(parsed).toEqual(env)
    }))
  })

  it('refuses an unknown version and a raw IP', () => {
    const event = impressionEventSchema.parse({ eventId: ulid(), ts: now, adId: 'a', campaignId: 'c', publisherId: 'p', requestId: 'r', impressionId: 'i' })
    const env = { v: 1, type: 'impression', key: 'b'.repeat(32), receivedAt: now, event, edge: { dedupe: 'new', source: 'batch' }, client: {} }
    expect(envelopeSchema.safeParse(env).success).toBe(true)
    expect(envelopeSchema.safeParse({ ...env, v: 2 }).success).toBe(false)
    expect(envelopeSchema.safeParse({ ...env, event: { ...event, ip: '203.0.113.9' } }).success).toBe(false)
  })
})

describe('reason registry', () => {
  it('has snake_case codes with a description, and HTTP statuses in range', () => {
    for (const [code, meta] of Object.entries(REASONS)) {
      expect(code).toMatch(/^[a-z][a-z0-9_]*$/)
      expect(isReasonCode(code)).toBe(true)
      expect((meta as { description: string }).description.length).toBeGreaterThan(5)
      const status = (meta as { status?: number }).status
      if (status !== undefined) expect(status >= 400 && status < 600).toBe(true)
    }
    expect(isReasonCode('nope')).toBe(false)
  })
})

describe('hashed client facts and viewability', () => {
  const base = { eventId: ulid(), ts: now, adId: 'a', campaignId: 'c', publisherId: 'p', requestId: 'r', impressionId: 'i' }
  const sha = 'ab'.repeat(32)

  it('accepts hex SHA-256 ipHash and uaHash instead of raw ip and ua, and nothing else there', () => {
    expect(impressionEventSchema.safeParse({ ...base, ipHash: sha, uaHash: sha.toUpperCase() }).success).toBe(true)
    expect(clickEventSchema.safeParse({ ...base, clickId: 'k', ipHash: sha, uaHash: sha }).success).toBe(true)
    for (const bad of ['ab'.repeat(31), 'zz'.repeat(32), '203.0.113.9', `${sha}00`]) {
      expect(impressionEventSchema.safeParse({ ...base, ipHash: bad }).success).toBe(false)
      expect(impressionEventSchema.safeParse({ ...base, uaHash: bad }).success).toBe(false)
    }
  })

  it('keeps a sender-side uaHash as a client fact of the envelope, and no hash inside its event', () => {
    const event = impressionEventSchema.parse({ ...base, viewable: true, viewMethod: 'mrc_50_1s' })
    const env = { v: 1, type: 'impression', key: 'c'.repeat(32), receivedAt: now, event, edge: { dedupe: 'new', source: 'batch' }, client: { ipHash: sha, uaHash: sha } }
    expect(envelopeSchema.parse(env)).toEqual(env)
    expect(envelopeSchema.safeParse({ ...env, event: { ...event, uaHash: sha } }).success).toBe(false)
  })

  it('names how viewability was measured with a known method only', () => {
    for (const viewMethod of ['mrc_50_1s', 'mrc_30_1s', 'mrc_50_2s', 'client']) {
      expect(impressionEventSchema.safeParse({ ...base, viewable: false, viewMethod }).success).toBe(true)
    }
    expect(impressionEventSchema.safeParse({ ...base, viewable: true, viewMethod: 'guess' }).success).toBe(false)
    expect(clickEventSchema.safeParse({ ...base, clickId: 'k', viewMethod: 'client' }).success).toBe(false)
  })
})
