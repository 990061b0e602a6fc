import { SELF } from 'cloudflare:test'
import { isReasonCode } from '@adc/schemas'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { EDGE, impression, postBatch, proxyReset } from '../../test/helpers.js'

const WHOLE_REQUEST = new Set([202, 400, 401, 413, 415])

async function expectDocumented(res: Response): Promise<any> {
  expect(WHOLE_REQUEST.has(res.status), `status ${res.status}`).toBe(true)
  const body = await res.json<any>()
  if (res.status === 202) {
    expect(body.received).toBe(body.results.length)
    for (const r of body.results) if (r.status === 'rejected') expect(isReasonCode(r.code)).toBe(true)
  } else {
    expect(isReasonCode(body.error.code)).toBe(true)
    expect(typeof body.error.message).toBe('string')
  }
  return body
}

beforeAll(async () => {
  await proxyReset()
})

describe('fuzzing the batch route', () => {
  it('garbage bytes and strings under any content type get a documented error, never a 500', async () => {
    const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', '', 'application/xml', 'multipart/form-data; boundary=x', 'APPLICATION/JSON')
    const body = fc.oneof(fc.string({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), fc.json({ maxDepth: 4 }), fc.string({ unit: 'grapheme', maxLength: 50 }))
    await fc.assert(fc.asyncProperty(contentType, body, async (type, b) => {
      await expectDocumented(await postBatch('impressions', null, { raw: b as BodyInit, headers: { 'content-type': type } }))
    }), { numRuns: 80 })
  })

  it('arbitrary JSON values as events are rejected one by one', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.anything({ maxDepth: 3 }), { minLength: 1, maxLength: 20 }), async (events) => {
      const body = await expectDocumented(await postBatch('impressions', null, { raw: JSON.stringify({ events }) }))
      if (body.results) expect(body.accepted).toBe(0)
    }), { numRuns: 40 })
  })

  it('valid events beside broken ones are all accepted, the broken ones rejected at their index', async () => {
    const breakEvent = fc.constantFrom(
      (e: Record<string, unknown>) => ({ ...e, ts: String(e.ts) }),
      (e: Record<string, unknown>) => ({ ...e, adId: 12345 }),
      (e: Record<string, unknown>) => ({ ...e, campaignId: 'c\u202e\u{1F600}' }),
      (e: Record<string, unknown>) => ({ ...e, eventId: '\ud800' }),
      (e: Record<string, unknown>) => ({ ...e, impressionId: undefined }),
      (e: Record<string, unknown>) => ({ ...e, viewable: 'true' }),
      (e: Record<string, unknown>) => ({ ...e, nested: { a: [1, { b: 2 }] } }),
      (e: Record<string, unknown>) => ({ ...e, geo: 'us' }),
      (e: Record<string, unknown>) => ({ ...e, ip: '999.1.1.1' }),
      (e: Record<string, unknown>) => ({ ...e, channel: 's2s', ua: 'Mozilla/5.0 \ud800' }),
      (e: Record<string, unknown>) => ({ ...e, placement: 'top\u0000' }),
      (e: Record<string, unknown>) => ({ ...e, userKey: 'u\u009b' }),
    )
    const slot = fc.oneof(fc.constant(null), breakEvent)
    await fc.assert(fc.asyncProperty(fc.array(slot, { minLength: 1, maxLength: 30 }), async (slots) => {
      const events = slots.map((s) => (s === null ? impression() : s(impression())))
      const body = await expectDocumented(await postBatch('impressions', { events }))
      const expected = slots.map((s) => (s === null ? 'accepted' : 'rejected'))
      expect(body.results.map((r: any) => r.status)).toEqual(expected)
      expect(body.results.filter((r: any) => r.status === 'rejected').every((r: any) => r.code === 'invalid_event')).toBe(true)
    }), { numRuns: 25 })
  })

  it('deeply nested JSON is refused per event or as bad JSON, not a crash', async () => {
    const depth = 100_000
    const deepArray = `{"events":[${'['.repeat(depth)}${']'.repeat(depth)}]}`
    const deepBody = await expectDocumented(await postBatch('impressions', null, { raw: deepArray }))
    if (deepBody.results) expect(deepBody.results[0].code).toBe('invalid_event')
    const deepField = `{"events":[${JSON.stringify(impression()).slice(0, -1)},"placement":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}]}`
    await expectDocumented(await postBatch('impressions', null, { raw: deepField }))
    const unterminated = `{"events":[${'['.repeat(depth)}`
    expect((await expectDocumented(await postBatch('impressions', null, { raw: unterminated }))).error.code).toBe('bad_json')
  })

  it('a 10,000-event batch is 413, a 500-event batch is accepted', async () => {
    const many = Array.from({ length: 10_000 }, () => impression())
    expect((await expectDocumented(await postBatch('impressions', { events: many }))).error.code).toBe('payload_too_large')
    const body = await expectDocumented(await postBatch('impressions', { events: many.slice(0, 500) }))
    expect(body.accepted).toBe(500)
  })

  it('invalid UTF-8 is bad_json', async () => {
    const bytes = new Uint8Array([0x7b, 0x22, 0x65, 0xff, 0xfe, 0x22, 0x7d])
    expect((await expectDocumented(await postBatch('impressions', null, { raw: bytes }))).error.code).toBe('bad_json')
  })
})

describe('fuzzing tokens', () => {
  it('forged tokens on the pixel and the redirect never redirect and never crash', async () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9_-]{0,60}$/)
    const forged = fc.oneof(
      fc.string({ maxLength: 120 }),
      fc.tuple(segment, segment, segment).map(([k, p, s]) => `v1.${k}.${p}.${s}`),
      fc.tuple(segment, segment).map(([p, s]) => `v1.k1.${p}.${s}`),
    )
    await fc.assert(fc.asyncProperty(forged, async (t) => {
      const click = await SELF.fetch(`${EDGE}/c/${encodeURIComponent(t)}`, { redirect: 'manual' })
      expect([400, 404, 410]).toContain(click.status)
      expect(click.headers.get('location')).toBeNull()
      await click.arrayBuffer()
      const pixel = await SELF.fetch(`${EDGE}/v1/pixel.gif?t=${encodeURIComponent(t)}`)
      expect([400, 410]).toContain(pixel.status)
      await pixel.arrayBuffer()
    }), { numRuns: 60 })
  })
})
