import { SELF } from 'cloudflare:test'
import { envelopeSchema, mintToken, type TokenPayload } from '@adc/schemas'
import { beforeEach, describe, expect, it } from 'vitest'
import { EDGE, eventually, impression, proxyReceived, proxyReset } from '../../test/helpers.js'

/** Real agents of each device class. */
const UA = {
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1',
  ipad: 'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  android: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
  windows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  smartTv: 'Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) 94.0.4606.31/7.0 TV Safari/537.36',
}

const now = () => Math.floor(Date.now() / 1000)
let n = 0
const token = (over: Partial<TokenPayload> = {}) => mintToken({
  impressionId: `imp_facts_${++n}_${Math.random().toString(36).slice(2)}`, campaignId: 'cmp_1', adId: 'ad_1', publisherId: 'pub_test', requestId: 'req_1',
  exp: now() + 600, url: 'https://advertiser.example/landing', ...over,
}, 'k1', 'secret-one')

/** A request as Cloudflare hands it to the Worker: `cf` carries the visitor's country. */
const fetchWith = (path: string, country: string | undefined, ua: string, init: RequestInit = {}) =>
  SELF.fetch(`${EDGE}${path}`, {
    redirect: 'manual',
    ...init,
    headers: { 'cf-connecting-ip': '198.51.100.20', 'user-agent': ua, ...(init.headers as Record<string, string> | undefined) },
    ...(country ? { cf: { country } } : {}),
  } as RequestInit)

const beacon = (events: unknown[], country: string | undefined, ua: string) =>
  fetchWith('/v1/beacon?k=pkpub_test', country, ua, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ events }) })

const batch = (events: unknown[], country: string | undefined, ua: string) =>
  fetchWith('/v1/events/impressions:batch', country, ua, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer pk_test' }, body: JSON.stringify({ events }) })

async function records(count: number) {
  const got = await eventually(() => proxyReceived(), (v) => v.records.length >= count)
  expect(got.records).toHaveLength(count)
  for (const r of got.records) expect(envelopeSchema.safeParse(r.value).success).toBe(true)
  return got.records.map((r) => r.value)
}

beforeEach(async () => {
  await proxyReset()
})

describe('geo and device from the edge when the client sends none', () => {
  it('tag traffic (beacon): country from cf and device class from the agent', async () => {
    await (await beacon([{ type: 'impression', ...impression() }], 'DE', UA.iphone)).arrayBuffer()
    const [env] = await records(1)
    expect(env!.event).toMatchObject({ geo: 'DE', device: 'mobile' })
  })

  it("pixel traffic: the visitor's country and a tablet", async () => {
    await (await fetchWith(`/v1/pixel.gif?t=${await token()}`, 'JP', UA.ipad)).arrayBuffer()
    const [env] = await records(1)
    expect(env!.event).toMatchObject({ geo: 'JP', device: 'tablet' })
  })

  it('redirect traffic: phones, desktops and TVs', async () => {
    for (const [country, ua] of [['BR', UA.android], ['US', UA.windows], ['KR', UA.smartTv]] as const) {
      expect((await fetchWith(`/c/${await token()}`, country, ua)).status).toBe(302)
    }
    const envs = await records(3)
    expect(envs.map((e) => [e.event.geo, e.event.device]).sort()).toEqual([['BR', 'mobile'], ['KR', 'ctv'], ['US', 'desktop']])
  })

  it("keeps the client's own geo and device when it sends them", async () => {
    await (await beacon([{ type: 'impression', ...impression({ geo: 'FR', device: 'desktop' }) }], 'DE', UA.iphone)).arrayBuffer()
    const [env] = await records(1)
    expect(env!.event).toMatchObject({ geo: 'FR', device: 'desktop' })
  })

  it('takes no country from cf when it is not a country (XX unknown, T1 Tor) and no device from an unknown agent', async () => {
    await (await beacon([{ type: 'impression', ...impression() }], 'XX', 'okhttp/4.12.0')).arrayBuffer()
    await (await beacon([{ type: 'impression', ...impression() }], 'T1', UA.windows)).arrayBuffer()
    const envs = await records(2)
    expect(envs.map((e) => [e.event.geo, e.event.device])).toEqual([[undefined, undefined], [undefined, 'desktop']])
  })

  it("server-to-server: the ad server's country and agent are not the user's; the forwarded agent is", async () => {
    const res = await batch([
      impression({ channel: 's2s' }),
      impression({ channel: 's2s', ua: UA.smartTv, ip: '81.2.69.160' }),
    ], 'IE', 'Go-http-client/2.0')
    expect(res.status).toBe(202)
    const envs = await records(2)
    expect(envs.map((e) => [e.event.geo, e.event.device])).toEqual([[undefined, undefined], [undefined, 'ctv']])
  })
})

describe('sender-side hashes', () => {
  const sha = (c: string) => c.repeat(64)

  it('keeps ipHash and uaHash as given (lower-cased) instead of request facts, and never the raw values', async () => {
    const res = await batch([impression({ channel: 'app', ipHash: sha('A'), uaHash: sha('b') })], 'DE', UA.android)
    expect((await res.json<any>()).accepted).toBe(1)
    const [env] = await records(1)
    expect(env!.client).toEqual({ ipHash: sha('a'), uaHash: sha('b') })
    expect(env!.event.ipHash).toBeUndefined()
    expect(env!.event.uaHash).toBeUndefined()
  })

  it('lets a raw ip or ua in the same event win over its hash', async () => {
    await (await batch([impression({ channel: 's2s', ip: '81.2.69.160', ipHash: sha('c'), ua: UA.windows, uaHash: sha('d') })], 'DE', 'curl/8')).arrayBuffer()
    const [env] = await records(1)
    expect(env!.client.ipPrefix).toBe('81.2.69.0/24')
    expect(env!.client.ipHash).toMatch(/^[0-9a-f]{32}$/)
    expect(env!.client.ua).toBe(UA.windows)
    expect(env!.client.uaHash).toBeUndefined()
  })

  it('keeps nothing of them without consent', async () => {
    await (await batch([impression({ channel: 'app', consent: false, ipHash: sha('e'), uaHash: sha('f') })], 'DE', UA.android)).arrayBuffer()
    const [env] = await records(1)
    expect(env!.client).toEqual({})
  })

  it('without consent, a known bot or a datacenter still carries what IVT judges it by', async () => {
    const bot = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
    await (await batch([impression({ consent: false })], 'DE', bot)).arrayBuffer()
    const [env] = await records(1)
    expect(env!.client.ua).toBe(bot)
    expect(env!.client.ipPrefix).toBe('198.51.100.0/24')
    expect(env!.client.ipHash).toBeUndefined()
  })
})

describe('a public key or a signed token cannot vouch for the client', () => {
  // The request of a public key (page HTML, app bundle: anyone may send with it) or of a pixel or
  // click token (loaded by the end user's browser) is the end user's own. Its IP is the one the edge
  // observes: a claimed ip, ipHash or channel s2s would let anyone who read the key send from a
  // datacenter and be judged on an address of their choosing.
  const OBSERVED = '198.51.100.0/24'
  const claims = [
    { channel: 's2s' },
    { ip: '81.2.69.160' },
    { ipHash: 'a'.repeat(64) },
    { channel: 's2s', ip: '81.2.69.160', ipHash: 'b'.repeat(64) },
  ]

  it('beacon: the observed IP is kept whatever the event claims, and the source stays the beacon', async () => {
    const res = await fetchWith('/v1/beacon?k=pkpub_test', 'DE', UA.windows, {
      method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ events: claims.map((c) => ({ type: 'impression', ...impression(c) })) }),
    })
    expect((await res.json<any>()).queued).toBe(claims.length)
    const envs = await records(claims.length)
    for (const env of envs) {
      expect(env.client.ipPrefix, JSON.stringify(env)).toBe(OBSERVED)
      expect(env.client.ipHash).toMatch(/^[0-9a-f]{32}$/)
      expect(env.edge.source).toBe('beacon')
    }
  })

  it('batch route with a public key: the same', async () => {
    const res = await fetchWith('/v1/events/impressions:batch', 'DE', UA.windows, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer pkpub_test' }, body: JSON.stringify({ events: claims.map((c) => impression(c)) }),
    })
    expect((await res.json<any>()).accepted).toBe(claims.length)
    const envs = await records(claims.length)
    for (const env of envs) {
      expect(env.client.ipPrefix, JSON.stringify(env)).toBe(OBSERVED)
      expect(env.edge.source).toBe('batch')
    }
  })

  it('a pixel or click token naming channel s2s still records the browser that loaded it', async () => {
    await (await fetchWith(`/v1/pixel.gif?t=${await token({ channel: 's2s' })}`, 'JP', UA.ipad)).arrayBuffer()
    expect((await fetchWith(`/c/${await token({ channel: 's2s' })}`, 'JP', UA.ipad)).status).toBe(302)
    const envs = await records(2)
    for (const env of envs) {
      expect(env.client.ipPrefix, JSON.stringify(env)).toBe(OBSERVED)
      expect(env.client.ua).toBe(UA.ipad)
    }
    expect(envs.map((e) => e.edge.source).sort()).toEqual(['pixel', 'redirect'])
  })

  it('a server key still forwards the end user it names (server-to-server)', async () => {
    await (await batch([impression({ channel: 's2s', ip: '81.2.69.160' })], 'DE', 'Go-http-client/2.0')).arrayBuffer()
    const [env] = await records(1)
    expect(env!.client.ipPrefix).toBe('81.2.69.0/24')
    expect(env!.edge.source).toBe('s2s')
  })
})
