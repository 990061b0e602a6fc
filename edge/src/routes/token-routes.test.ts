import { createExecutionContext, runInDurableObject, SELF } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { app } from '../index.js'
import { envelopeSchema, idempotencyKey, mintToken, ulidFromDigest, type TokenPayload } from '@adc/schemas'
import { timeBucketOfMs } from '../dedupe/dedupe-key.js'
import { DEDUPE_TTL_MS } from '../dedupe/dedupe-shard.js'
import { dedupeShardOf, shardFor } from '../dedupe/shard.js'
import { settingsFrom } from '../settings.js'
import { beforeEach, describe, expect, it } from 'vitest'
import { decodeTime, TIME_MAX } from 'ulid'
import { EDGE, click, confirmed, eventually, impression, proxyReceived, proxyReset, tokenedClick } from '../../test/helpers.js'

const now = () => Math.floor(Date.now() / 1000)
let n = 0
const payload = (over: Partial<TokenPayload> = {}): TokenPayload => ({
  impressionId: `imp_tok_${++n}_${Math.random().toString(36).slice(2)}`, campaignId: 'cmp_1', adId: 'ad_1', publisherId: 'pub_test', requestId: 'req_1',
  exp: now() + 600, url: 'https://advertiser.example/landing?utm=x', ...over,
})
const token = (over: Partial<TokenPayload> = {}, keyId = 'k1', secret = 'secret-one') => mintToken(payload(over), keyId, secret)
const get = (path: string, init: RequestInit = {}) => SELF.fetch(`${EDGE}${path}`, { redirect: 'manual', ...init, headers: { 'cf-connecting-ip': '198.51.100.20', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0', ...(init.headers as Record<string, string> | undefined) } })

beforeEach(async () => {
  await proxyReset()
})

describe('GET /v1/pixel.gif', () => {
  it('answers a no-store 1x1 GIF and counts the impression once across reloads', async () => {
    const t = await token()
    const res = await get(`/v1/pixel.gif?t=${t}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('image/gif')
    expect(res.headers.get('cache-control')).toContain('no-store')
    const gif = new Uint8Array(await res.arrayBuffer())
    expect(gif.byteLength).toBe(43)
    expect(String.fromCharCode(...gif.subarray(0, 6))).toBe('GIF89a')
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 1)
    expect(got.records).toHaveLength(1)
    expect(got.records[0]!.value).toMatchObject({ type: 'impression', edge: { source: 'pixel' }, client: { ipPrefix: '198.51.100.0/24' } })
    expect(got.records[0]!.value.event.eventId).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/)
    expect(envelopeSchema.safeParse(got.records[0]!.value).success).toBe(true)

    await (await get(`/v1/pixel.gif?t=${t}`)).arrayBuffer()
    const stats = await eventually(() => proxyReceived('edge-stats'), (v) => v.records.length >= 2)
    expect(stats.records.map((r) => r.value.duplicate)).toContain(1)
    expect((await proxyReceived()).records).toHaveLength(1)
  })

  const pixelKeyTables = async (t: string) => {
    await (await get(`/v1/pixel.gif?t=${t}`)).arrayBuffer()
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 1)
    const eventId = got.records[0]!.value.event.eventId as string
    const key = await idempotencyKey('pub_test', 'impression', eventId)
    const shard = shardFor(env, dedupeShardOf('pub_test', eventId, settingsFrom(env).dedupeShards))
    const read = () => runInDurableObject(shard, (_i, state) => ({
      v2: state.storage.sql.exec<{ k: string }>('SELECT k FROM dedupe_keys_v2 WHERE substr(k, 9) = ?', key).toArray().map((r) => r.k),
      untimed: state.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM dedupe_keys WHERE key = ?', key).one().n,
    }))
    return { key, tables: await eventually(read, (v) => v.v2.length + v.untimed > 0) }
  }

  it('a token valid for more than a day leaves its pixel\'s key in the table kept 24 h after the confirm', async () => {
    const { tables } = await pixelKeyTables(await token({ exp: now() + 3 * 86_400 }))
    expect(tables).toEqual({ v2: [], untimed: 1 })
  })

  it('files a pixel\'s dedupe key by time (its token\'s expiry less 24 h), kept exactly until the token expires', async () => {
    const exp = now() + 3600
    const t = await token({ exp })
    const { key, tables } = await pixelKeyTables(t)
    expect(tables).toEqual({ v2: [timeBucketOfMs(exp * 1000 - DEDUPE_TTL_MS) + key], untimed: 0 })
    // The event id is a ULID of that time, so core files its delivery key under the same hour.
    const first = (await proxyReceived()).records[0]!.value.event.eventId as string
    expect(decodeTime(first)).toBe(exp * 1000 - DEDUPE_TTL_MS)
    // The reload is still the same event.
    await (await get(`/v1/pixel.gif?t=${t}`)).arrayBuffer()
    const stats = await eventually(() => proxyReceived('edge-stats'), (v) => v.records.some((r) => r.value.duplicate === 1))
    expect(stats.records.map((r) => r.value.duplicate)).toContain(1)
    expect((await proxyReceived()).records).toHaveLength(1)
  })

  it('a token whose expiry lies past the last time a ULID holds still answers the GIF and delivers its impression once', async () => {
    const t = await token({ exp: 9_000_000_000_000 })
    const res = await get(`/v1/pixel.gif?t=${t}`)
    expect(res.status).toBe(200)
    await res.arrayBuffer()
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 1)
    const eventId = got.records[0]!.value.event.eventId as string
    expect(decodeTime(eventId)).toBe(TIME_MAX)
    expect(envelopeSchema.safeParse(got.records[0]!.value).success).toBe(true)
  })

  it("cannot have its event id taken first: whoever reads the token in the page cannot make the pixel's impression a duplicate", async () => {
    const p = payload()
    const t = await mintToken(p, 'k1', 'secret-one')
    // Everything a page visitor has: the token (img src), the publisher's public key (the tag's
    // data-key), and how an id derived from a token alone would be made (time: expiry less 24 h).
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`impression\u001f${t}`)))
    const squat = impression({ eventId: ulidFromDigest(p.exp * 1000 - DEDUPE_TTL_MS, digest), impressionId: 'imp_squatter' })
    const beacon = await SELF.fetch(`${EDGE}/v1/beacon?k=pkpub_test`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ events: [{ type: 'impression', ...squat }] }) })
    expect((await beacon.json<any>()).queued).toBe(1)
    await confirmed('impression', [squat])
    await (await get(`/v1/pixel.gif?t=${t}`)).arrayBuffer()
    const got = await eventually(() => proxyReceived(), (v) => v.records.some((r) => r.value.event.impressionId === p.impressionId))
    expect(got.records.map((r) => r.value.event.impressionId).sort()).toEqual([p.impressionId, 'imp_squatter'].sort())
    // Its reload is still the same event.
    await (await get(`/v1/pixel.gif?t=${t}`)).arrayBuffer()
    const stats = await eventually(() => proxyReceived('edge-stats'), (v) => v.records.some((r) => r.value.duplicate === 1))
    expect(stats.records.map((r) => r.value.duplicate)).toContain(1)
    expect((await proxyReceived()).records).toHaveLength(2)
  })

  it.each([
    ['HEAD', { method: 'HEAD', headers: { 'user-agent': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1.15' } }],
    ['a link scanner', { headers: { 'user-agent': 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' } }],
  ])('%s gets the GIF but records nothing, so it never takes the impression of the person who loads the pixel after it', async (_name, init) => {
    const t = await token()
    const scan = await get(`/v1/pixel.gif?t=${t}`, init)
    await scan.arrayBuffer()
    await (await get(`/v1/pixel.gif?t=${t}`)).arrayBuffer()
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 1)
    expect(got.records).toHaveLength(1)
    expect(got.records[0]!.value.client.ua).toBe('Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0')
    const stats = await eventually(() => proxyReceived('edge-stats'), (v) => v.records.length >= 1)
    expect(stats.records.map((r) => r.value.duplicate)).not.toContain(1)
    expect([scan.status, scan.headers.get('content-type'), scan.headers.get('x-adc-reason')]).toEqual([200, 'image/gif', 'prefetch_pixel'])
  })

  it('400 for a tampered token, 410 for an expired one, 400 without one', async () => {
    const t = await token()
    const tampered = await get(`/v1/pixel.gif?t=${t.slice(0, -3)}AAA`)
    expect([tampered.status, (await tampered.json<any>()).error.code]).toEqual([400, 'invalid_token'])
    const expired = await get(`/v1/pixel.gif?t=${await token({ exp: now() - 1 })}`)
    expect([expired.status, (await expired.json<any>()).error.code]).toEqual([410, 'token_expired'])
    expect((await get('/v1/pixel.gif')).status).toBe(400)
  })
})

describe('GET /c/<token>', () => {
  it('redirects to the landing URL with clickId appended and records the click', async () => {
    const res = await get(`/c/${await token()}`)
    expect(res.status).toBe(302)
    const location = new URL(res.headers.get('location')!)
    expect(location.origin + location.pathname).toBe('https://advertiser.example/landing')
    expect(location.searchParams.get('utm')).toBe('x')
    const clickId = location.searchParams.get('clickId')!
    expect(clickId).toMatch(/^[0-9A-Z]{26}$/)
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 1)
    expect(got.records[0]!.value).toMatchObject({ type: 'click', event: { clickId }, edge: { source: 'redirect' } })
    expect(got.records[0]!.value.edge.prefetch).toBeUndefined()
    expect(envelopeSchema.safeParse(got.records[0]!.value).success).toBe(true)
  })

  it.each([
    ['HEAD', { method: 'HEAD', headers: { 'user-agent': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1.15' } }],
    ['Sec-Purpose prefetch', { headers: { 'sec-purpose': 'prefetch' } }],
    ['Sec-Purpose prerender', { headers: { 'sec-purpose': 'prefetch;prerender' } }],
    ['a link scanner', { headers: { 'user-agent': 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)' } }],
  ])('%s gets the redirect but is recorded as prefetch, not a click', async (_name, init) => {
    const res = await get(`/c/${await token()}`, init as RequestInit)
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toContain('https://advertiser.example/landing')
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 1)
    expect(got.records[0]!.value.edge.prefetch).toBe(true)
    expect(envelopeSchema.safeParse(got.records[0]!.value).success).toBe(true)
  })

  it('never redirects for a bad, tampered, expired, url-less or foreign-signed token', async () => {
    const cases: [string, number][] = [
      ['garbage', 400],
      // Another last character (the same one would leave the token intact, 1 time in 16).
      [await token().then((t) => `${t.slice(0, -1)}${t.endsWith('A') ? 'Q' : 'A'}`), 400],
      [await token({ exp: now() - 5 }), 410],
      [await token({ url: undefined }), 400],
      [await token({ publisherId: 'pub_test' }, 'k2', 'secret-two'), 400],
      [await token({ url: 'https://evil.example/' }, 'k1', 'wrong-secret'), 400],
    ]
    for (const [t, status] of cases) {
      const res = await get(`/c/${t}`)
      expect(res.status).toBe(status)
      expect(res.headers.get('location')).toBeNull()
      expect(res.headers.get('content-type')).toContain('text/html')
      const html = await res.text()
      expect(html).not.toContain('evil.example')
    }
    expect((await proxyReceived()).records).toHaveLength(0)
  })
})

describe('when the tenant config is unavailable', () => {
  it('the redirect shows a 503 page (never a redirect) and the batch route a 503 error', async () => {
    const broken = { ...env, EDGE_CONFIG_JSON: '{"broken":' }
    const ctx = createExecutionContext()
    const res = await app.request(`/c/${await token()}`, {}, broken, ctx)
    expect(res.status).toBe(503)
    expect(res.headers.get('location')).toBeNull()
    expect(res.headers.get('content-type')).toContain('text/html')
    const batch = await app.request('/v1/events/impressions:batch', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer pk_test' }, body: '{"events":[]}' }, broken, ctx)
    expect(batch.status).toBe(503)
    expect((await batch.json<any>()).error.code).toBe('upstream_unavailable')
  })
})

describe('POST /v1/beacon', () => {
  const beacon = (body: string, { key = 'pkpub_test', type = 'text/plain' } = {}) =>
    SELF.fetch(`${EDGE}/v1/beacon?k=${key}`, { method: 'POST', headers: { 'content-type': type }, body })

  it('parses a text/plain body of mixed events, answers at once and delivers in the background', async () => {
    const events = [{ type: 'impression', ...impression() }, { type: 'click', ...(await tokenedClick()) }, { type: 'conversion', ...impression() }, { ...impression() }]
    const res = await beacon(JSON.stringify({ events }))
    expect(res.status).toBe(202)
    const body = await res.json<any>()
    expect(body).toMatchObject({ received: 4, queued: 2, rejected: 2 })
    expect(body.results[2]).toMatchObject({ status: 'rejected', code: 'invalid_event' })
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 2)
    expect(got.records.map((r) => [r.value.type, r.value.edge.source])).toEqual([['impression', 'beacon'], ['click', 'beacon']])
  })

  it('refuses more than 64 KiB, other content types and a missing or unknown key', async () => {
    const big = JSON.stringify({ events: [{ type: 'impression', ...impression({ placement: 'x'.repeat(70_000) }) }] })
    expect((await beacon(big)).status).toBe(413)
    expect((await beacon('{}', { type: 'application/x-www-form-urlencoded' })).status).toBe(415)
    expect((await beacon('{"events":[]}', { key: 'nope' })).status).toBe(401)
    // A server key in a URL (kept by logs, proxies, browser history) is refused, not used.
    const serverKey = await beacon(JSON.stringify({ events: [{ type: 'impression', ...impression() }] }), { key: 'pk_test' })
    expect(serverKey.status).toBe(403)
    expect((await serverKey.json<any>()).error.code).toBe('forbidden')
    expect((await beacon('not json')).status).toBe(400)
  })
})

describe('GET /tag.js and /healthz', () => {
  it('serves the browser tag', async () => {
    const res = await get('/tag.js')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('javascript')
    const js = await res.text()
    for (const needle of ['sendBeacon', 'keepalive', 'IntersectionObserver', 'pagehide', '/v1/beacon', '/c/']) expect(js).toContain(needle)
    expect(js.length).toBeLessThan(8_000)
  })

  it('healthz answers ok', async () => {
    expect(await (await get('/healthz')).json()).toEqual({ ok: true })
  })
})
