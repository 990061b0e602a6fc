import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { envelopeSchema } from '@adc/schemas'
import { CLICK_KEYS, CLIENT_KEYS, EDGE_KEYS, ENVELOPE_KEYS, IMPRESSION_KEYS, fastEnvelope } from './envelope-fast.js'
import { testEnvelope } from '../../testing/events.js'
import { arbTypedEnvelope, asJson, shape } from '../../testing/envelope-arbitrary.js'

describe('fastEnvelope', () => {
  it('knows every key of the schema, in its order (a field added to the schema fails here first)', () => {
    const [impression, click] = envelopeSchema.options
    const keys = (o: { shape: object }): string[] => Object.keys(o.shape)
    for (const o of [impression, click]) {
      expect(keys(o)).toEqual([...ENVELOPE_KEYS])
      expect(keys(o.shape.edge)).toEqual([...EDGE_KEYS])
      expect(keys(o.shape.client)).toEqual([...CLIENT_KEYS])
    }
    expect(keys(impression.shape.event)).toEqual([...IMPRESSION_KEYS])
    expect(keys(click.shape.event)).toEqual([...CLICK_KEYS])
  })

  it('accepts only what zod accepts, and then answers exactly what zod answers (values and key order)', () => {
    let accepted = 0
    let zodAccepted = 0
    fc.assert(
      fc.property(arbTypedEnvelope, (raw) => {
        const json = asJson(raw)
        const fast = fastEnvelope(json)
        const parsed = envelopeSchema.safeParse(json)
        if (parsed.success) zodAccepted++
        if (fast === undefined) return
        accepted++
        expect(parsed.success).toBe(true)
        expect(fast).toStrictEqual(parsed.data)
        expect(shape(fast)).toStrictEqual(shape(parsed.data))
      }),
      { numRuns: 20_000 },
    )
    // Not vacuous: the generator reaches valid envelopes, and most of them take the fast path.
    expect(zodAccepted).toBeGreaterThan(2000)
    expect(accepted).toBeGreaterThan(zodAccepted / 2)
  })

  it('takes the fast path for what the edge writes, impressions and clicks', () => {
    for (const type of ['impression', 'click'] as const) {
      const json = asJson(testEnvelope({ type, n: 1, impressionId: 'imp_1', ts: 1_795_455_805_000, userKey: 'u1', prefetch: type === 'click' }))
      const fast = fastEnvelope(json)
      expect(fast).toBeDefined()
      expect(fast).toStrictEqual(envelopeSchema.parse(json))
    }
  })

  it('takes the fast path for UUIDv7 ids, a viewability method and a sender-side agent hash', () => {
    const base = asJson(testEnvelope({ type: 'impression', n: 1, impressionId: 'imp_1', ts: 1_795_455_805_000 })) as { client: Record<string, unknown>; event: Record<string, unknown> }
    const json = {
      ...base,
      client: { ipHash: 'cd'.repeat(32), uaHash: 'ab'.repeat(32) },
      event: { ...base.event, eventId: '019371a2-7c4e-7d3f-9a1b-2c3d4e5f6a7b', viewable: true, viewMethod: 'mrc_50_1s' },
    }
    const fast = fastEnvelope(json)
    expect(fast).toBeDefined()
    expect(fast).toStrictEqual(envelopeSchema.parse(json))
  })

  it('leaves to zod what zod transforms or refuses', () => {
    const base = asJson(testEnvelope({ type: 'impression', n: 1, impressionId: 'imp_1', ts: 1_795_455_805_000 })) as { event: Record<string, unknown> }
    expect(fastEnvelope({ ...base, event: { ...base.event, ts: '2026-11-23T10:00:00Z' } })).toBeUndefined()
    expect(fastEnvelope({ ...base, event: { ...base.event, ua: 'Mozilla/5.0' } })).toBeUndefined()
    expect(fastEnvelope({ ...base, event: { ...base.event, geo: 'us' } })).toBeUndefined()
    expect(fastEnvelope(JSON.parse('{"__proto__":{"v":1}}'))).toBeUndefined()
    expect(fastEnvelope([base])).toBeUndefined()
    // Ill-formed text or control characters in any client string (schemas/src/text.ts).
    const withClient = asJson(testEnvelope({ type: 'impression', n: 1, impressionId: 'imp_1', ts: 1_795_455_805_000 })) as { client: Record<string, unknown>; event: Record<string, unknown> }
    for (const bad of ['\ud800', 'Mozilla\u0000', '\u009b']) {
      for (const json of [{ ...withClient, client: { ...withClient.client, ua: bad } }, { ...withClient, event: { ...withClient.event, userKey: bad } }]) {
        expect(fastEnvelope(asJson(json))).toBeUndefined()
        expect(envelopeSchema.safeParse(asJson(json)).success).toBe(false)
      }
    }
  })
})
