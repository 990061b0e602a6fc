import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { envelopeSchema } from '@adc/schemas'
import { CLICK_KEYS, CLIENT_KEYS, EDGE_KEYS, ENVELOPE_KEYS, IMPRESSION_KEYS, fastEnvelope } from './envelope-fast.js'
import { testEnvelope } from '../../testing/events.js'

/** Key order, recursively: the fast path must build the very objects zod builds. */
const shape = (x: unknown): unknown =>
  typeof x === 'object' && x !== null && !Array.isArray(x) ? Object.entries(x).map(([k, v]) => [k, shape(v)]) : x

/** A field that is absent, valid, or wrong in one of the ways a producer gets it wrong. */
const field = (valid: unknown[], invalid: unknown[] = []) => fc.oneof(
  { arbitrary: fc.constantFrom(...valid), weight: 150 },
  { arbitrary: fc.constant(undefined), weight: 1 },
  { arbitrary: fc.constantFrom(null, '', 'x'.repeat(200), -1, 1.5, 2 ** 60, true, [], {}, 'ÄB', ' ab', 'a b', 'a\ud800', '\udc00b', 'a\u0000', '\t', 'x\u007f', 'x\u0085', ...invalid), weight: 2 },
)
/** Usually absent: keys the event schema refuses. */
const rare = (v: unknown) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 60 }, { arbitrary: fc.constant(v), weight: 1 })
/** Usually present, sometimes absent. */
const present = <T>(a: fc.Arbitrary<T>) => fc.oneof({ arbitrary: a, weight: 30 }, { arbitrary: fc.constant(undefined), weight: 1 })

const arbEnvelope = fc.record({
  v: fc.constantFrom(1, 1, 1, 1, 1, 1, 1, 1, 2, '1'),
  type: fc.constantFrom('impression', 'click', 'impression', 'click', 'impression', 'click', 'other'),
  key: field(['0123456789abcdef0123456789abcdef'], ['0123456789ABCDEF0123456789ABCDEF', '0123456789abcdef']),
  receivedAt: field([1_795_455_805_257, 0, 8.64e15], [8.64e15 + 1]),
  edge: present(fc.record({
    colo: field(['AMS', 'x'.repeat(16)], ['x'.repeat(17)]), country: field(['NL'], ['NLD']), asn: field([13335, 0]),
    dedupe: field(['new', 'skipped'], ['NEW']), source: field(['batch', 'beacon', 'pixel', 'redirect', 's2s'], ['api']), prefetch: field([true, false]),
    configVersion: field([0, 57, 2 ** 40]),
    extra: field(['stripped']),
  })),
  client: present(fc.record({
    ua: field(['Mozilla/5.0', 'x'.repeat(1024), 'curl/8 é'], ['x'.repeat(1025)]), ipPrefix: field(['198.51.0.0/24', 'x'.repeat(64)], ['x'.repeat(65)]), ipHash: field(['h1', 'x'.repeat(64)], ['x'.repeat(65)]), uaHash: field(['ab'.repeat(32)], ['x'.repeat(65)]), ip: field(['1.2.3.4']),
  })),
  event: present(fc.record({
    eventId: field(['01JD0000000000000000000000', '01jd0000000000000000000000', '019371a2-7c4e-7d3f-9a1b-2c3d4e5f6a7b', '019371A2-7C4E-7D3F-BA1B-2C3D4E5F6A7B'], ['01JD000000000000000000000I', '01JD00000000000000000000000', '019371a2-7c4e-4d3f-9a1b-2c3d4e5f6a7b', '019371a27c4e7d3f9a1b2c3d4e5f6a7b']),
    ts: field([1_795_455_805_000, 0, 8.64e15, '2026-11-23T10:00:00Z'], [8.64e15 + 1, 'not a date', '2026-11-23T10:00:00Z'.repeat(3)]),
    adId: field(['ad_1', 'a:b.c-d', 'x'.repeat(128)], ['x'.repeat(129), 'a/b']), campaignId: field(['cmp_demo_cpm']), publisherId: field(['pub_demo']), requestId: field(['req_1', 'x'.repeat(128)], ['x'.repeat(129)]),
    impressionId: field(['imp_1']), userKey: field(['u1', 'x'.repeat(128), 'é'], ['x'.repeat(129)]), channel: field(['web', 'app', 'ctv', 's2s'], ['tv']),
    device: field(['desktop', 'mobile', 'tablet', 'ctv', 'other'], ['phone']), geo: field(['US'], ['us', 'USA']), placement: field(['top', '', 'x'.repeat(128)], ['x'.repeat(129)]),
    consent: field([true, false]), viewable: field([true, false]), viewMethod: field(['mrc_50_1s', 'client'], ['MRC']), clickId: field(['clk_1'], ['c/1']), ua: rare('Mozilla/5.0'), ip: rare('1.2.3.4'), ipHash: rare('ab'.repeat(32)), other: rare(1),
  })),
})

/** JSON round trip: the decode step sees JSON.parse output (no undefined values, plain objects). */
const asJson = (x: unknown): unknown => JSON.parse(JSON.stringify(x))

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
      fc.property(arbEnvelope, fc.integer({ min: 0, max: 19 }), (raw, dice) => {
        // Each type has its own key (clickId, viewable); now and then the other type's key stays.
        const ev = raw.event as Record<string, unknown> | undefined
        if (ev && dice > 0) {
          if (raw.type === 'click') {
            delete ev.viewable
            delete ev.viewMethod
          } else delete ev.clickId
        }
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
