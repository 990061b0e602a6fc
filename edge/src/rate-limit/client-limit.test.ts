import { mintToken } from '@adc/schemas'
import { SELF } from 'cloudflare:test'
import { beforeEach, describe, expect, it } from 'vitest'
import { EDGE, impression, postBatch, proxyReset, signedBatch } from '../../test/helpers.js'

beforeEach(async () => {
  await proxyReset()
})

const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0'
const WINDOW_MS = 10_000

/**
 * Waits for the start of a fresh window of the share's counter (10 s, fixed), so a test's requests
 * fall in one: each test's requests take a second or two, well inside the 9.5 s left.
 */
async function freshWindow(): Promise<void> {
  const into = Date.now() % WINDOW_MS
  if (into > 500) await new Promise((r) => setTimeout(r, WINDOW_MS - into + 20))
}

const beacon = (ip: string, n: number) => SELF.fetch(`${EDGE}/v1/beacon?k=pkpub_share`, {
  method: 'POST', headers: { 'content-type': 'text/plain', 'cf-connecting-ip': ip, 'user-agent': BROWSER },
  body: JSON.stringify({ events: Array.from({ length: n }, () => ({ type: 'impression', ...impression({ publisherId: 'pub_share' }) })) }),
})

const get = (ip: string, path: string) => SELF.fetch(`${EDGE}${path}`, { redirect: 'manual', headers: { 'cf-connecting-ip': ip, 'user-agent': BROWSER } })

let n = 0
const token = () => mintToken({
  impressionId: `imp_share_${++n}_${Math.random().toString(36).slice(2)}`, campaignId: 'cmp_1', adId: 'ad_1', publisherId: 'pub_share', requestId: 'req_1',
  exp: Math.floor(Date.now() / 1000) + 600, url: 'https://advertiser.example/landing',
}, 'ks', 'secret-share')

const stats = async (credential: string) =>
  (await SELF.fetch(`${EDGE}/v1/internal/rate-limit/pub_share?credential=${credential}`, { headers: { authorization: 'Bearer edge_sync_test' } })).json<{ allowedEvents: number; refusedRequests: number }>()

describe("a client address's share of the publisher's public budgets", () => {
  it('refuses one address past its share (429 client_rate_limited), without spending the publisher budget; another address is still served', async () => {
    await freshWindow()
    // The share is 100 units of up to 50 events per 10 s: twenty beacons of 250 events (5 units each).
    for (let i = 0; i < 20; i++) {
      const res = await beacon('198.51.100.90', 250)
      expect(res.status).toBe(202)
      expect((await res.json<{ queued: number }>()).queued).toBe(250)
    }
    const over = await beacon('198.51.100.90', 1)
    expect(over.status).toBe(429)
    expect(over.headers.get('retry-after')).toBe('10')
    expect((await over.json<{ error: { code: string } }>()).error.code).toBe('client_rate_limited')

    // The publisher's public budget (burst 6,000) gave 5,000 events; the refused request took none,
    // so another address still gets the last 1,000.
    expect(await stats('public_key')).toMatchObject({ allowedEvents: 5000, refusedRequests: 0 })
    for (let i = 0; i < 4; i++) {
      const res = await beacon('198.51.100.91', 250)
      expect(res.status).toBe(202)
      await res.arrayBuffer()
    }
    expect(await stats('public_key')).toMatchObject({ allowedEvents: 6000 })
  })

  it("counts the public key's batches in the same share as its beacons; the server key's batches from that address take none", async () => {
    await freshWindow()
    const ip = '198.51.100.95'
    const events = (n: number) => ({ events: Array.from({ length: n }, () => impression()) })
    // Ten 500-event batches through the public key are the share's 100 units.
    for (let i = 0; i < 10; i++) {
      const res = await postBatch('impressions', events(500), { key: 'pkpub_test', headers: { 'cf-connecting-ip': ip } })
      expect(res.status).toBe(202)
      await res.arrayBuffer()
    }
    const over = await postBatch('impressions', events(1), { key: 'pkpub_test', headers: { 'cf-connecting-ip': ip } })
    expect(over.status).toBe(429)
    expect((await over.json<{ error: { code: string } }>()).error.code).toBe('client_rate_limited')
    const beaconOver = await SELF.fetch(`${EDGE}/v1/beacon?k=pkpub_test`, {
      method: 'POST', headers: { 'content-type': 'text/plain', 'cf-connecting-ip': ip, 'user-agent': BROWSER },
      body: JSON.stringify({ events: [{ type: 'impression', ...impression() }] }),
    })
    expect(beaconOver.status).toBe(429)
    await beaconOver.arrayBuffer()
    const server = await postBatch('impressions', events(500), { key: 'pk_test', headers: { 'cf-connecting-ip': ip } })
    expect(server.status).toBe(202)
    expect((await server.json<{ accepted: number }>()).accepted).toBe(500)
  })

  it("counts an app-scope request signature's batches in the share, on a budget of their own; a server-scope signature from that address takes none", async () => {
    await freshWindow()
    const headers = { 'cf-connecting-ip': '198.51.100.96' }
    const events = (n: number) => ({ events: Array.from({ length: n }, () => impression({ publisherId: 'pub_share' })) })
    const publicBefore = await stats('public_key')
    // The app's secret is in every copy of the app: ten 500-event batches are one address's 100 units.
    for (let i = 0; i < 10; i++) {
      const res = await signedBatch('impressions', events(500), { keyId: 'as', secret: 'asecret-share', headers })
      expect(res.status).toBe(202)
      await res.arrayBuffer()
    }
    const over = await signedBatch('impressions', events(1), { keyId: 'as', secret: 'asecret-share', headers })
    expect(over.status).toBe(429)
    expect((await over.json<{ error: { code: string } }>()).error.code).toBe('client_rate_limited')
    // Its own publisher budget: the public key's was not spent.
    expect(await stats('app_signature')).toMatchObject({ allowedEvents: 5000, refusedRequests: 0 })
    expect((await stats('public_key')).allowedEvents).toBe(publicBefore.allowedEvents)
    const server = await signedBatch('impressions', events(500), { keyId: 'rs', secret: 'rsecret-share', headers })
    expect(server.status).toBe(202)
    expect((await server.json<{ accepted: number }>()).accepted).toBe(500)
  })

  it('counts an IPv6 client by its /64: another address of the same /64 shares its units, another /64 does not', async () => {
    await freshWindow()
    // The share's 100 units, from two addresses of one /64.
    for (let i = 0; i < 100; i++) {
      const res = await get(i % 2 === 0 ? '2001:db8:5:6::1' : '2001:0db8:0005:0006:ffff:1:2:3', `/v1/pixel.gif?t=${await token()}`)
      expect(res.status).toBe(200)
      await res.arrayBuffer()
    }
    const over = await get('2001:db8:5:6:abcd::', `/v1/pixel.gif?t=${await token()}`)
    expect(over.status).toBe(429)
    expect((await over.json<{ error: { code: string } }>()).error.code).toBe('client_rate_limited')
    const other = await get('2001:db8:5:7::1', `/v1/pixel.gif?t=${await token()}`)
    expect(other.status).toBe(200)
    await other.arrayBuffer()
  })

  it('spans the pixel and the click redirect: a click past the share still redirects, says why and is not recorded', async () => {
    await freshWindow()
    const ip = '198.51.100.92'
    for (let i = 0; i < 100; i++) {
      const res = await get(ip, `/v1/pixel.gif?t=${await token()}`)
      expect(res.status).toBe(200)
      await res.arrayBuffer()
    }
    const tokenBefore = await stats('token')
    const click = await get(ip, `/c/${await token()}`)
    expect(click.status).toBe(302)
    expect(new URL(click.headers.get('location')!).origin).toBe('https://advertiser.example')
    expect(click.headers.get('x-adc-reason')).toBe('client_rate_limited')
    // Not charged to the publisher's token budget either.
    expect((await stats('token')).allowedEvents).toBe(tokenBefore.allowedEvents)
    const elsewhere = await get('198.51.100.93', `/c/${await token()}`)
    expect(elsewhere.status).toBe(302)
    expect(elsewhere.headers.get('x-adc-reason')).toBeNull()
  })
})
