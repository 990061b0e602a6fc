import { SELF } from 'cloudflare:test'
import { envelopeSchema } from '@adc/schemas'
import { beforeEach, describe, expect, it } from 'vitest'
import { EDGE, click, eventually, impression, postBatch, proxyReceived, proxyReset, tokenedClick } from '../../test/helpers.js'

beforeEach(async () => {
  await proxyReset()
})

/** Client strings that are valid JSON but not text every stage can carry (schemas/src/text.ts). */
const poison: Array<[field: string, value: string]> = [
  ['ua', '\ud800'],
  ['ua', 'Mozilla/5.0 \udfff'],
  ['userKey', 'u\u0000'],
  ['placement', 'top\u0085'],
  ['ua', 'Mozilla\u007f'],
]

describe('ill-formed text and control characters are refused per event, naming the field', () => {
  it('batch route: 400 invalid_event for each poisoned event, the good ones beside them accepted and forwarded', async () => {
    const good = [impression({ channel: 's2s', ua: 'Mozilla/5.0 (X11) é 😀' }), impression()]
    const events = [good[0], ...poison.map(([field, value]) => impression({ channel: 's2s', [field]: value })), good[1]]
    const res = await postBatch('impressions', { events })
    expect(res.status).toBe(202)
    const body = await res.json<any>()
    expect(body).toMatchObject({ received: events.length, accepted: 2, rejected: poison.length })
    poison.forEach(([field], i) => {
      const r = body.results[i + 1]
      expect(r).toMatchObject({ status: 'rejected', code: 'invalid_event', httpStatus: 400 })
      expect(r.message.startsWith(`${field}: `)).toBe(true)
    })
    const got = await proxyReceived()
    expect(got.records.map((r) => r.key)).toEqual(good.map((e) => e.impressionId))
    for (const r of got.records) expect(envelopeSchema.safeParse(r.value).success).toBe(true)
  })

  it('beacon route: the same, for impressions and clicks', async () => {
    const good = [{ type: 'impression', ...impression() }, { type: 'click', ...(await tokenedClick()) }]
    const bad = [{ type: 'impression', ...impression({ ua: '\ud800' }) }, { type: 'click', ...(await tokenedClick({ ua: '\ud800' })) }]
    const res = await SELF.fetch(`${EDGE}/v1/beacon?k=pkpub_test`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ events: [good[0], ...bad, good[1]] }) })
    expect(res.status).toBe(202)
    const body = await res.json<any>()
    expect(body).toMatchObject({ received: 4, queued: 2, rejected: 2 })
    for (const r of body.results.slice(1, 3)) {
      expect(r).toMatchObject({ status: 'rejected', code: 'invalid_event', httpStatus: 400 })
      expect(r.message).toMatch(/^ua: must be well-formed Unicode/)
    }
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 2)
    expect(got.records.map((r) => r.value.event.eventId)).toEqual(good.map((e) => (e as { eventId?: unknown }).eventId))
  })

  it('a user agent header the edge observes itself is cleaned, never forwarded as a record core would refuse', async () => {
    // Header values are bytes; obs-text reaches the Worker as Latin-1, so 0x85 is the C1 control U+0085.
    const res = await postBatch('impressions', { events: [impression()] }, { headers: { 'user-agent': 'Mozilla/5.0 \u0085\u00e9 x' } })
    expect(res.status).toBe(202)
    const [r] = (await proxyReceived()).records
    expect(r!.value.client.ua).toBe('Mozilla/5.0 \ufffd\u00e9 x')
    expect(envelopeSchema.safeParse(r!.value).success).toBe(true)
  })
})
