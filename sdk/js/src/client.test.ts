import { signRequest } from '@adc/schemas/signing'
import { describe, expect, it } from 'vitest'
import { createClient, type ClientOptions } from './client.js'
import { memoryStorage } from './storage/storage.js'
import type { FetchLike } from './transport.js'
import type { Dropped } from './types.js'

interface Sent {
  url: string
  headers: Record<string, string>
  body: string
  events: Array<Record<string, unknown>>
}

type Answer = (req: Sent) => { status: number; body?: unknown; headers?: Record<string, string> } | 'network'

/** A hand-written edge: records each request and answers with the scripted reply. */
function fakeEdge(answer: Answer) {
  const sent: Sent[] = []
  const fetch: FetchLike = async (url, init) => {
    const req: Sent = { url, headers: init.headers, body: init.body, events: (JSON.parse(init.body) as { events: Array<Record<string, unknown>> }).events }
    sent.push(req)
    const a = answer(req)
    if (a === 'network') throw new TypeError('fetch failed')
    return new Response(a.body === undefined ? null : JSON.stringify(a.body), { status: a.status, headers: a.headers })
  }
  return { sent, fetch }
}

const allAccepted: Answer = (req) => ({ status: 202, body: { results: req.events.map((e, index) => ({ index, eventId: e.eventId, status: 'accepted' })) } })

const imp = (i: number) => ({ adId: 'ad_1', campaignId: 'cmp_1', requestId: `req_${i}`, impressionId: `imp_${i}` })

function setup(answer: Answer, extra: Partial<ClientOptions> = {}) {
  const edge = fakeEdge(answer)
  const dropped: Dropped[] = []
  let clock = 1_800_000_000_000
  const client = createClient({
    endpoint: 'http://127.0.0.1:9/', publisherId: 'pub_1', auth: { serverKey: 'sk_1' }, fetch: edge.fetch,
    flushAt: 1000, flushIntervalMs: 0, backoff: { baseMs: 60_000, maxMs: 600_000 }, now: () => clock, random: () => 0.5,
    onRejected: (d) => dropped.push(d), lifecycle: [], ...extra,
  })
  return { client, edge, dropped, advance: (ms: number) => { clock += ms }, now: () => clock }
}

describe('createClient', () => {
  it('sends each type to its batch route with the server key, ids and ts fixed at creation', async () => {
    const { client, edge } = setup(allAccepted)
    const id = await client.impression(imp(1))
    await client.click({ ...imp(1), clickId: 'clk_1' })
    expect(await client.flush()).toEqual({ delivered: 2, dropped: 0, pending: 0 })
    expect(edge.sent.map((s) => s.url)).toEqual(['http://127.0.0.1:9/v1/events/impressions:batch', 'http://127.0.0.1:9/v1/events/clicks:batch'])
    expect(edge.sent[0]!.headers.authorization).toBe('Bearer sk_1')
    expect(edge.sent[0]!.headers['user-agent']).toMatch(/^adc-js\/\d+\.\d+\.\d+ \(\w+ \w+\)$/)
    expect(edge.sent[0]!.events[0]).toMatchObject({ eventId: id, ts: 1_800_000_000_000, publisherId: 'pub_1', impressionId: 'imp_1' })
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/)
  })

  it('flushes by itself at the count threshold', async () => {
    const { client, edge } = setup(allAccepted, { flushAt: 3 })
    await client.impression(imp(1))
    await client.impression(imp(2))
    expect(edge.sent).toHaveLength(0)
    await client.impression(imp(3))
    await new Promise((r) => setTimeout(r, 10))
    expect(edge.sent).toHaveLength(1)
    expect(client.stats()).toMatchObject({ delivered: 3, queued: 0 })
  })

  it('halves its batches after a 429 until they fit the edge\'s burst, and grows them back', async () => {
    // An edge whose publisher has a burst of 30 events: a larger request is refused whole, forever.
    const { client, edge, advance } = setup((req) => (req.events.length > 30
      ? { status: 429, body: { error: { code: 'rate_limited' } }, headers: { 'retry-after': '1' } }
      : allAccepted(req)))
    for (let i = 0; i < 100; i++) await client.impression(imp(i))
    for (let round = 0; round < 20 && client.stats().queued > 0; round++) {
      await client.flush()
      advance(10 * 60_000)
    }
    expect(client.stats()).toMatchObject({ delivered: 100, queued: 0, dropped: 0 })
    expect(edge.sent.map((s) => s.events.length)).toEqual([100, 50, 25, 25, 25, 25])
  })

  it('treats duplicate as done, drops rejected with its code, keeps the rest', async () => {
    const { client, edge, dropped } = setup((req) => ({
      status: 202,
      body: { results: [{ index: 0, status: 'duplicate' }, { index: 1, status: 'rejected', code: 'invalid_event', message: 'geo: bad' }, { index: 2, status: 'accepted' }] },
    }))
    const ids = [await client.impression(imp(1)), await client.impression({ ...imp(2), geo: 'usa' }), await client.impression(imp(3))]
    const r = await client.flush()
    expect(r).toEqual({ delivered: 2, dropped: 1, pending: 0 })
    expect(dropped).toEqual([{ eventId: ids[1], type: 'impression', code: 'invalid_event', message: 'geo: bad', status: 202 }])
    expect(edge.sent).toHaveLength(1)
  })

  it('on 429 waits at least Retry-After, then resends the same events byte for byte (same ids: idempotent)', async () => {
    let n = 0
    const { client, edge, advance } = setup((req) => (n++ === 0 ? { status: 429, body: { error: { code: 'rate_limited' } }, headers: { 'retry-after': '7' } } : allAccepted(req)))
    await client.impression(imp(1))
    await client.impression(imp(2))
    const first = await client.flush()
    expect(first).toMatchObject({ delivered: 0, pending: 2 })
    expect(first.retryInMs).toBeGreaterThanOrEqual(7000)
    advance(6000)
    expect(await client.flush()).toMatchObject({ delivered: 0, pending: 2 })
    expect(edge.sent).toHaveLength(1)
    advance(first.retryInMs! - 6000)
    // The resend is split in halves (a 429 halves the batch size), each event's bytes unchanged.
    expect(await client.flush()).toMatchObject({ delivered: 2, pending: 0 })
    expect(edge.sent.slice(1).map((s) => s.events.length)).toEqual([1, 1])
    expect(edge.sent.slice(1).flatMap((s) => s.events)).toEqual(edge.sent[0]!.events)
    expect(client.stats().retries).toBe(1)
  })

  it('backs off exponentially on network errors and 5xx', async () => {
    let n = 0
    const { client, advance } = setup((req) => (++n <= 3 ? (n === 2 ? { status: 502 } : 'network') : allAccepted(req)))
    await client.impression(imp(1))
    const delays: number[] = []
    for (let i = 0; i < 3; i++) {
      const r = await client.flush()
      delays.push(r.retryInMs!)
      advance(r.retryInMs!)
    }
    // random() = 0.5: half of 60 s, 120 s, 240 s.
    expect(delays).toEqual([30_000, 60_000, 120_000])
    expect(await client.flush()).toMatchObject({ delivered: 1 })
  })

  it('retries only the events a 503 answer says were not stored', async () => {
    let n = 0
    const { client, edge, advance } = setup((req) => (n++ === 0
      ? { status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'upstream_unavailable' }, results: [{ index: 0, status: 'accepted' }, { index: 1, status: 'failed' }] } }
      : allAccepted(req)))
    await client.impression(imp(1))
    const second = await client.impression(imp(2))
    const r = await client.flush()
    expect(r).toMatchObject({ delivered: 1, pending: 1 })
    advance(r.retryInMs!)
    await client.flush()
    expect(edge.sent[1]!.events.map((e) => e.eventId)).toEqual([second])
  })

  it('a 413 splits the batch in halves until the parts fit; only an event refused alone is dropped', async () => {
    // A body limit below the SDK's (a proxy in front, an older edge): at most 2 events per body, and event 'big' never fits.
    const { client, edge, dropped } = setup((req) => (req.events.length > 2 || req.events.some((e) => e.placement === 'big')
      ? { status: 413, body: { error: { code: 'payload_too_large', message: 'the body exceeds 100 bytes' } } }
      : allAccepted(req)))
    const ids: string[] = []
    for (let i = 0; i < 7; i++) ids.push(await client.impression(i === 3 ? { ...imp(i), placement: 'big' } : imp(i)))
    expect(await client.flush()).toEqual({ delivered: 6, dropped: 1, pending: 0 })
    expect(dropped).toEqual([expect.objectContaining({ eventId: ids[3], code: 'payload_too_large', status: 413 })])
    const accepted = edge.sent.filter((s) => s.events.length <= 2 && !s.events.some((e) => e.placement === 'big'))
    expect(accepted.flatMap((s) => s.events.map((e) => e.eventId))).toEqual(ids.filter((_, i) => i !== 3))
    expect(client.stats()).toMatchObject({ retries: 0, delivered: 6, dropped: 1 })
  })

  it('a 503 in the second half of a split batch keeps those events (and the rest) for the retry', async () => {
    let n = 0
    const { client, advance } = setup((req) => {
      if (req.events.length > 2) return { status: 413, body: { error: { code: 'payload_too_large' } } }
      return ++n === 2 ? { status: 503, body: { error: { code: 'upstream_unavailable' } }, headers: { 'retry-after': '1' } } : allAccepted(req)
    })
    for (let i = 0; i < 8; i++) await client.impression(imp(i))
    const r = await client.flush()
    expect(r).toMatchObject({ delivered: 2, dropped: 0, pending: 6 })
    advance(r.retryInMs!)
    expect(await client.flush()).toMatchObject({ delivered: 6, pending: 0 })
  })

  it('after signature_stale (the device clock is off) signs with the edge\'s clock from its Date header and resends', async () => {
    // The device clock is 20 minutes behind the edge's.
    const edgeNow = () => clockNow + 20 * 60_000
    let clockNow = 0
    const { client, edge, dropped, now, advance } = setup((req) => (Math.abs(Number(req.headers['x-adc-timestamp']) - edgeNow() / 1000) > 300
      ? { status: 401, body: { error: { code: 'signature_stale', message: 'X-Adc-Timestamp is more than 300 s from the edge clock' } }, headers: { date: new Date(edgeNow()).toUTCString() } }
      : allAccepted(req)), { auth: { keyId: 'k1', secret: 's' } })
    clockNow = now()
    await client.impression(imp(1))
    const r = await client.flush()
    expect(r).toMatchObject({ delivered: 0, dropped: 0, pending: 1 })
    advance(r.retryInMs!)
    clockNow = now()
    expect(await client.flush()).toMatchObject({ delivered: 1, pending: 0 })
    expect(dropped).toEqual([])
    expect(edge.sent).toHaveLength(2)
    // The same event again (same id, so the edge dedupes it), its ts now on the edge's clock too.
    expect(edge.sent[1]!.events[0]!.eventId).toBe(edge.sent[0]!.events[0]!.eventId)
    expect(edge.sent[0]!.events[0]!.ts).toBe(edgeNow() - 20 * 60_000 - r.retryInMs!)
    expect(Math.abs((edge.sent[1]!.events[0]!.ts as number) - (edgeNow() - r.retryInMs!))).toBeLessThan(1_000)
    // Later requests are signed on the edge's clock from the start.
    await client.impression(imp(2))
    expect(await client.flush()).toMatchObject({ delivered: 1 })
    expect(edge.sent).toHaveLength(3)
  })

  it('after signature_stale from a clock ahead, the same body is signed on the edge\'s clock, not after its stale timestamp', async () => {
    // The device clock is 20 minutes ahead; the app gives ts itself, so the resent body is the same bytes.
    let clockNow = 0
    const edgeNow = () => clockNow - 20 * 60_000
    const { client, edge, dropped, now, advance } = setup((req) => (Math.abs(Number(req.headers['x-adc-timestamp']) - edgeNow() / 1000) > 300
      ? { status: 401, body: { error: { code: 'signature_stale', message: 'X-Adc-Timestamp is more than 300 s from the edge clock' } }, headers: { date: new Date(edgeNow()).toUTCString() } }
      : allAccepted(req)), { auth: { keyId: 'k1', secret: 's' } })
    clockNow = now()
    await client.impression({ ...imp(1), ts: edgeNow() })
    let r = await client.flush()
    for (let i = 0; i < 5 && r.pending > 0; i++) {
      advance(r.retryInMs!)
      clockNow = now()
      r = await client.flush()
    }
    expect(r).toMatchObject({ delivered: 1, pending: 0 })
    expect(dropped).toEqual([])
    expect(edge.sent).toHaveLength(2)
  })

  it('signature_stale without a Date header keeps the events and retries with backoff instead of dropping them', async () => {
    let n = 0
    const { client, dropped, advance } = setup((req) => (n++ === 0 ? { status: 401, body: { error: { code: 'signature_stale' } } } : allAccepted(req)), { auth: { keyId: 'k1', secret: 's' } })
    await client.impression(imp(1))
    const r = await client.flush()
    expect(r).toMatchObject({ delivered: 0, dropped: 0, pending: 1 })
    advance(r.retryInMs!)
    expect(await client.flush()).toMatchObject({ delivered: 1 })
    expect(dropped).toEqual([])
  })

  it('does not retry a whole-request 400/401/403/413/422 (a 413 of one event): the events are dropped with the code', async () => {
    for (const [status, code] of [[400, 'invalid_batch'], [401, 'unauthorized'], [403, 'forbidden'], [413, 'payload_too_large'], [422, 'clock_skew']] as const) {
      const { client, dropped, edge } = setup(() => ({ status, body: { error: { code, message: 'no' } } }))
      await client.impression(imp(1))
      expect(await client.flush()).toEqual({ delivered: 0, dropped: 1, pending: 0 })
      expect(dropped[0]).toMatchObject({ code, status })
      await client.flush()
      expect(edge.sent).toHaveLength(1)
    }
  })

  it('withholds client facts without consent', async () => {
    const { client, edge } = setup(allAccepted, { consent: false })
    await client.impression({ ...imp(1), userKey: 'u1', ua: 'Mozilla/5.0', ip: '198.51.100.7' })
    client.setConsent(true)
    await client.impression({ ...imp(2), userKey: 'u2' })
    await client.flush()
    const [a, b] = edge.sent[0]!.events
    expect(a).toMatchObject({ consent: false })
    expect(a).not.toHaveProperty('userKey')
    expect(a).not.toHaveProperty('ua')
    expect(a).not.toHaveProperty('ip')
    expect(b).toMatchObject({ userKey: 'u2' })
    expect(b).not.toHaveProperty('consent')
  })

  it('sheds the oldest event past the cap and reports queue_full', async () => {
    const { client, dropped } = setup(allAccepted, { maxQueueEvents: 2 })
    const first = await client.impression(imp(1))
    await client.impression(imp(2))
    await client.impression(imp(3))
    expect(dropped).toEqual([expect.objectContaining({ eventId: first, code: 'queue_full' })])
    expect(client.stats()).toMatchObject({ shed: 1, queued: 2 })
  })

  it('a public key uses the beacon route: key in the query, text/plain, types mixed, clickToken carried', async () => {
    const { client, edge } = setup((req) => ({ status: 202, body: { results: req.events.map((_, index) => ({ index, status: 'queued' })) } }), { auth: { publicKey: 'pk 1' } })
    await client.impression(imp(1))
    await client.click({ ...imp(1), clickId: 'clk_1', clickToken: 'v1.k.p.s' })
    expect(await client.flush()).toMatchObject({ delivered: 2 })
    expect(edge.sent).toHaveLength(1)
    expect(edge.sent[0]!.url).toBe('http://127.0.0.1:9/v1/beacon?k=pk%201')
    expect(edge.sent[0]!.headers['content-type']).toMatch(/^text\/plain/)
    expect(edge.sent[0]!.headers.authorization).toBeUndefined()
    expect(edge.sent[0]!.events.map((e) => [e.type, e.clickToken])).toEqual([['impression', undefined], ['click', 'v1.k.p.s']])
  })

  it('signs each request; a resend of the same body gets a fresh timestamp, so the edge never sees a replay', async () => {
    let n = 0
    const { client, edge, advance } = setup((req) => (n++ === 0 ? 'network' : allAccepted(req)), { auth: { keyId: 'k1', secret: 's3cret' }, backoff: { baseMs: 1, maxMs: 1 } })
    await client.impression(imp(1))
    await client.flush()
    advance(1)
    await client.flush()
    const [a, b] = edge.sent
    expect(a!.body).toBe(b!.body)
    expect(Number(b!.headers['x-adc-timestamp'])).toBeGreaterThan(Number(a!.headers['x-adc-timestamp']))
    for (const s of [a!, b!]) {
      expect(s.headers['x-adc-key-id']).toBe('k1')
      expect(s.headers['x-adc-signature']).toBe(await signRequest('s3cret', Number(s.headers['x-adc-timestamp']), 'POST', '/v1/events/impressions:batch', s.body))
    }
  })

  it('re-signs and resends after signature_replayed (a restart within the same second) instead of dropping', async () => {
    let n = 0
    const { client, dropped, edge, advance } = setup((req) => (n++ === 0 ? { status: 401, body: { error: { code: 'signature_replayed' } } } : allAccepted(req)), { auth: { keyId: 'k1', secret: 's' } })
    await client.impression(imp(1))
    const r = await client.flush()
    expect(r).toMatchObject({ delivered: 0, dropped: 0, pending: 1 })
    expect(r.retryInMs).toBeGreaterThanOrEqual(1000)
    advance(r.retryInMs!)
    expect(await client.flush()).toMatchObject({ delivered: 1 })
    expect(dropped).toEqual([])
    expect(edge.sent[1]!.headers['x-adc-signature']).not.toBe(edge.sent[0]!.headers['x-adc-signature'])
  })

  it('drops an event larger than any body the route takes, with event_too_large', async () => {
    const { client, dropped, edge } = setup(allAccepted, { auth: { publicKey: 'pk' } })
    await client.impression({ ...imp(1), placement: 'p', ua: 'x'.repeat(70_000) })
    await client.impression(imp(2))
    await client.flush()
    expect(client.stats()).toMatchObject({ delivered: 1, dropped: 1, queued: 0 })
    expect(dropped[0]!.code).toBe('event_too_large')
    expect(edge.sent[0]!.events).toHaveLength(1)
  })

  it('restores the queue from storage: what a previous run left is sent with its original ids', async () => {
    const storage = memoryStorage(null)
    const first = setup(() => 'network', { storage })
    const id = await first.client.impression(imp(1))
    await first.client.flush()
    const second = setup(allAccepted, { storage })
    expect(await second.client.flush()).toMatchObject({ delivered: 1 })
    expect(second.edge.sent[0]!.events[0]!.eventId).toBe(id)
    expect(second.edge.sent[0]!.body).toBe(first.edge.sent[0]!.body)
  })

  it('a failing background flush goes to onError, never to an unhandled rejection', async () => {
    const errors: unknown[] = []
    const { client } = setup(allAccepted, { endpoint: 'not a url', auth: { keyId: 'k', secret: 's' }, flushAt: 1, onError: (e) => errors.push(e) })
    await client.impression(imp(1))
    await new Promise((r) => setTimeout(r, 20))
    expect(errors).toHaveLength(1)
    expect(client.stats().queued).toBe(1)
  })

  it('shutdown flushes, then refuses new events', async () => {
    const { client, edge } = setup(allAccepted)
    await client.impression(imp(1))
    await client.shutdown()
    expect(edge.sent).toHaveLength(1)
    expect(() => client.impression(imp(2))).toThrow(/shut down/)
  })
})
