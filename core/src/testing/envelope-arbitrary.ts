import fc from 'fast-check'

/**
 * Envelopes as producers get them right and wrong, for the decode step's property tests
 * (pipeline/steps/envelope-fast.test.ts, envelope-scan.test.ts): each field absent, valid, or wrong
 * in one of the ways a producer gets it wrong.
 */

/** Key order, recursively: the fast path must build the very objects zod builds. */
export const shape = (x: unknown): unknown =>
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

export const arbEnvelope = fc.record({
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
export const asJson = (x: unknown): unknown => JSON.parse(JSON.stringify(x))


/** An arbitrary envelope whose event mostly has only its own type's keys (clickId, viewable); now and then the other type's. */
export const arbTypedEnvelope = fc.tuple(arbEnvelope, fc.integer({ min: 0, max: 19 })).map(([raw, dice]) => {
  const ev = raw.event as Record<string, unknown> | undefined
  if (ev && dice > 0) {
    if (raw.type === 'click') {
      delete ev.viewable
      delete ev.viewMethod
    } else delete ev.clickId
  }
  return raw
})
