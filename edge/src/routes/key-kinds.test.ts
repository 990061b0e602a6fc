import { SELF } from 'cloudflare:test'
import { mintToken, type TokenPayload } from '@adc/schemas'
import { beforeEach, describe, expect, it } from 'vitest'
import { EDGE, click, eventually, impression, postBatch, proxyReceived, proxyReset } from '../../test/helpers.js'

const now = () => Math.floor(Date.now() / 1000)
const tokenFor = (ev: Record<string, unknown>, over: Partial<TokenPayload> = {}, keyId = 'k1', secret = 'secret-one') =>
  mintToken({
    impressionId: ev.impressionId as string, campaignId: ev.campaignId as string, adId: ev.adId as string,
    publisherId: ev.publisherId as string, requestId: ev.requestId as string, exp: now() + 600, url: 'https://advertiser.example/l', ...over,
  }, keyId, secret)
const beacon = (events: unknown[], key: string) =>
  SELF.fetch(`${EDGE}/v1/beacon?k=${key}`, { method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': 'Mozilla/5.0 test' }, body: JSON.stringify({ events }) })
const outcomes = (body: any) => body.results.map((r: any) => [r.status, r.code, r.httpStatus])

beforeEach(async () => {
  await proxyReset()
})

describe('public keys (page HTML) send impressions, and clicks only with a signed click token', () => {
  it('refuses a tokenless click from a public key per event, and accepts the same click from a server key', async () => {
    const c = click()
    const pub = await beacon([{ type: 'impression', ...impression() }, { type: 'click', ...c }], 'pkpub_test')
    expect(pub.status).toBe(202)
    expect(outcomes(await pub.json())).toEqual([['queued', undefined, undefined], ['rejected', 'click_token_required', 403]])
    const batch = await postBatch('clicks', { events: [c] }, { key: 'pkpub_test' })
    expect(outcomes(await batch.json())).toEqual([['rejected', 'click_token_required', 403]])
    const server = await postBatch('clicks', { events: [c] }, { key: 'pk_test' })
    expect(outcomes(await server.json())).toEqual([['accepted', undefined, undefined]])
  })

  it('accepts a public-key click with its valid clickToken, and keeps the token out of the log', async () => {
    const c = click()
    const res = await beacon([{ type: 'click', ...c, clickToken: await tokenFor(c) }], 'pkpub_test')
    expect(outcomes(await res.json())).toEqual([['queued', undefined, undefined]])
    const got = await eventually(() => proxyReceived(), (v) => v.records.length >= 1)
    expect(got.records[0]!.value.event.impressionId).toBe(c.impressionId)
    expect(got.records[0]!.value.event).not.toHaveProperty('clickToken')
  })

  it('refuses a clickToken for another impression or campaign, tampered, or minted with a request signing key', async () => {
    const c = click()
    const other = await tokenFor(c, { impressionId: 'imp_someone_else' })
    const tampered = (await tokenFor(c)).slice(0, -3) + 'AAA'
    // r1 is pub_test's request signing key: an app holding it must not be able to mint billable clicks.
    const byRequestKey = await tokenFor(c, {}, 'r1', 'rsecret-one')
    const byOtherPublisher = await tokenFor({ ...c, publisherId: 'pub_other' }, {}, 'k2', 'secret-two')
    const res = await postBatch('clicks', {
      events: [other, tampered, byRequestKey, byOtherPublisher].map((clickToken) => ({ ...click({ impressionId: c.impressionId }), clickToken })),
    }, { key: 'pkpub_test' })
    expect(outcomes(await res.json())).toEqual([
      ['rejected', 'invalid_token', 400],
      ['rejected', 'invalid_token', 400],
      ['rejected', 'invalid_token', 400],
      ['rejected', 'invalid_token', 400],
    ])
  })

  it("refuses a pixel token (no landing URL) as a click's clickToken: it sits in every page's img src and proves an impression, not a click", async () => {
    const c = click()
    // What mintPixelToken gives the ad server for the same impression: the same fields, no url.
    const pixelToken = await tokenFor(c, { url: undefined })
    const res = await beacon([{ type: 'click', ...c, clickToken: pixelToken }], 'pkpub_test')
    const body = await res.json<any>()
    expect(outcomes(body)).toEqual([['rejected', 'invalid_token', 400]])
    expect(body.results[0].message).toMatch(/pixel token/)
    // The redirect refuses the same token: a click token always names where the click goes.
    const redirect = await SELF.fetch(`${EDGE}/c/${pixelToken}`, { redirect: 'manual' })
    expect(redirect.status).toBe(400)
    expect((await proxyReceived()).records).toHaveLength(0)
  })

  it('lets a public key use the batch routes for impressions (it can send nothing there it could not beacon)', async () => {
    const res = await postBatch('impressions', { events: [impression()] }, { key: 'pkpub_test' })
    expect(outcomes(await res.json())).toEqual([['accepted', undefined, undefined]])
  })
})

describe('only booked campaigns', () => {
  it('rejects events for a campaign nobody booked, per event, with unknown_campaign (422)', async () => {
    const res = await postBatch('impressions', { events: [impression(), impression({ campaignId: 'cmp_nobody' })] })
    expect(outcomes(await res.json())).toEqual([['accepted', undefined, undefined], ['rejected', 'unknown_campaign', 422]])
    const got = await proxyReceived()
    expect(got.records.map((r) => r.value.event.campaignId)).toEqual(['cmp_1'])
  })

  it("rejects a publisher's events for a campaign booked with another publisher only, per event, and its tokens", async () => {
    const res = await postBatch('impressions', { events: [impression(), impression({ campaignId: 'cmp_other_only' })] })
    const body = await res.json<any>()
    expect(outcomes(body)).toEqual([['accepted', undefined, undefined], ['rejected', 'unknown_campaign', 422]])
    expect(body.results[1].message).toContain('not booked with publisher pub_test')
    // The same answer as for a campaign that exists nowhere: a page's public key is no oracle of
    // which campaign ids other tenants have.
    const unknown = await (await postBatch('impressions', { events: [impression({ campaignId: 'cmp_nobody' })] }, { key: 'pkpub_test' })).json<any>()
    const booked = await (await postBatch('impressions', { events: [impression({ campaignId: 'cmp_other_only' })] }, { key: 'pkpub_test' })).json<any>()
    expect(booked.results[0].message.replace('cmp_other_only', '<id>')).toBe(unknown.results[0].message.replace('cmp_nobody', '<id>'))
    // Its own publisher sends it.
    const own = await postBatch('impressions', { events: [impression({ publisherId: 'pub_other', campaignId: 'cmp_other_only' })] }, { key: 'pk_other' })
    expect(outcomes(await own.json())).toEqual([['accepted', undefined, undefined]])
    // A token pub_test's key signed for it is refused like one for an unbooked campaign.
    const pixel = await SELF.fetch(`${EDGE}/v1/pixel.gif?t=${await tokenFor(impression({ campaignId: 'cmp_other_only' }))}`)
    expect([pixel.status, (await pixel.json<any>()).error.code]).toEqual([422, 'unknown_campaign'])
    await new Promise((r) => setTimeout(r, 200))
    expect((await proxyReceived()).records.map((r) => [r.value.event.publisherId, r.value.event.campaignId])).toEqual([['pub_test', 'cmp_1'], ['pub_other', 'cmp_other_only']])
  })

  it('refuses pixel and click tokens for an unbooked campaign: no event, and the click shows a page, never a redirect', async () => {
    const ev = impression({ campaignId: 'cmp_nobody' })
    const t = await tokenFor(ev)
    const pixel = await SELF.fetch(`${EDGE}/v1/pixel.gif?t=${t}`)
    expect([pixel.status, (await pixel.json<any>()).error.code]).toEqual([422, 'unknown_campaign'])
    const res = await SELF.fetch(`${EDGE}/c/${t}`, { redirect: 'manual' })
    expect(res.status).toBe(422)
    expect(res.headers.get('location')).toBeNull()
    expect(res.headers.get('content-type')).toContain('text/html')
    expect(await res.text()).not.toContain('advertiser.example')
    await new Promise((r) => setTimeout(r, 200))
    expect((await proxyReceived()).records).toHaveLength(0)
  })

  it('refuses a pixel or click token minted with a request signing key', async () => {
    const t = await tokenFor(impression(), {}, 'r1', 'rsecret-one')
    expect((await SELF.fetch(`${EDGE}/v1/pixel.gif?t=${t}`)).status).toBe(400)
    const res = await SELF.fetch(`${EDGE}/c/${t}`, { redirect: 'manual' })
    expect([res.status, res.headers.get('location')]).toEqual([400, null])
  })
})
