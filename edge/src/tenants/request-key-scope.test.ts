import { mintToken, type TokenPayload } from '@adc/schemas'
import { beforeEach, describe, expect, it } from 'vitest'
import { click, eventually, impression, proxyReceived, proxyReset, signedBatch } from '../../test/helpers.js'

/**
 * Request signing keys by scope (edge/vitest.config.ts): pub_test's `a1` is an `app` key (its secret
 * ships inside every copy of an app, so anyone who unpacks one can sign with it), `r1` a `server`
 * key (kept on the publisher's servers). An app signature proves what the public key proves.
 */
const APP = { keyId: 'a1', secret: 'asecret-one' }
const SERVER = { keyId: 'r1', secret: 'rsecret-one' }
const OBSERVED_IP = '198.51.100.20'
const CLAIMED_IP = '81.2.69.160'

const tokenFor = (ev: Record<string, unknown>, over: Partial<TokenPayload> = {}) =>
  mintToken({
    impressionId: ev.impressionId as string, campaignId: ev.campaignId as string, adId: ev.adId as string,
    publisherId: ev.publisherId as string, requestId: ev.requestId as string, exp: Math.floor(Date.now() / 1000) + 600,
    url: 'https://advertiser.example/l', ...over,
  }, 'k1', 'secret-one')
const outcomes = (body: any) => body.results.map((r: any) => [r.status, r.code, r.httpStatus])

async function records(count: number) {
  const got = await eventually(() => proxyReceived(), (v) => v.records.length >= count)
  expect(got.records).toHaveLength(count)
  return got.records.map((r) => r.value)
}

beforeEach(async () => {
  await proxyReset()
})

describe('an app-scope request signature is trusted as the public key', () => {
  it('refuses its tokenless click (click_token_required) and a click with a foreign token (invalid_token); accepts the click with its clickToken', async () => {
    const c = click()
    const bare = await signedBatch('clicks', { events: [c] }, APP)
    expect(bare.status).toBe(202)
    expect(outcomes(await bare.json())).toEqual([['rejected', 'click_token_required', 403]])
    const foreign = await signedBatch('clicks', { events: [{ ...c, clickToken: await tokenFor(c, { impressionId: 'imp_someone_else' }) }] }, APP)
    expect(outcomes(await foreign.json())).toEqual([['rejected', 'invalid_token', 400]])
    const tokened = await signedBatch('clicks', { events: [{ ...c, clickToken: await tokenFor(c) }] }, APP)
    expect(outcomes(await tokened.json())).toEqual([['accepted', undefined, undefined]])
    const [env] = await records(1)
    expect(env!.event.impressionId).toBe(c.impressionId)
    expect(env!.event).not.toHaveProperty('clickToken')
  })

  it('keeps the address the edge observed whatever ip, ipHash or channel s2s its event claims', async () => {
    const claims = [{ ip: CLAIMED_IP }, { ipHash: 'a'.repeat(64) }, { channel: 's2s', ip: CLAIMED_IP, ipHash: 'b'.repeat(64) }]
    const res = await signedBatch('impressions', { events: claims.map((cl) => impression(cl)) }, { ...APP, headers: { 'cf-connecting-ip': OBSERVED_IP } })
    expect((await res.json<any>()).accepted).toBe(claims.length)
    for (const env of await records(claims.length)) {
      expect(env.client.ipPrefix, JSON.stringify(env)).toBe('198.51.100.0/24')
      expect(env.client.ipHash).toMatch(/^[0-9a-f]{32}$/)
      expect(env.edge.source).toBe('batch')
    }
  })
})

describe('a server-scope request signature keeps its trust', () => {
  it('may send a tokenless click, and names the end user it sends for (ip, channel s2s)', async () => {
    const c = click({ channel: 's2s', ip: CLAIMED_IP })
    const res = await signedBatch('clicks', { events: [c] }, { ...SERVER, headers: { 'cf-connecting-ip': OBSERVED_IP } })
    expect(outcomes(await res.json())).toEqual([['accepted', undefined, undefined]])
    const [env] = await records(1)
    expect(env!.client.ipPrefix).toBe('81.2.69.0/24')
    expect(env!.edge.source).toBe('s2s')
  })
})
