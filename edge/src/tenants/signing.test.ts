import { SELF } from 'cloudflare:test'
import { mintToken, signRequest } from '@adc/schemas'
import { beforeEach, describe, expect, it } from 'vitest'
import { EDGE, impression, proxyReset } from '../../test/helpers.js'
import { sha256Hex } from '../crypto.js'

const PATH = '/v1/events/impressions:batch'

async function signedPost(body: string, opts: { keyId?: string; secret?: string; ts?: number; signature?: string } = {}): Promise<Response> {
  const ts = opts.ts ?? Math.floor(Date.now() / 1000)
  const signature = opts.signature ?? (await signRequest(opts.secret ?? 'rsecret-one', ts, 'POST', PATH, body))
  return SELF.fetch(`${EDGE}${PATH}`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-adc-key-id': opts.keyId ?? 'r1', 'x-adc-timestamp': String(ts), 'x-adc-signature': signature },
  })
}

const code = async (res: Response) => [res.status, (await res.json<any>()).error?.code]

beforeEach(async () => {
  await proxyReset()
})

describe('HMAC request signing', () => {
  it('accepts a correctly signed batch', async () => {
    const res = await signedPost(JSON.stringify({ events: [impression()] }))
    expect(res.status).toBe(202)
    expect((await res.json<any>()).accepted).toBe(1)
  })

  it('accepts a rotated (older) key id of the same publisher', async () => {
    expect((await signedPost(JSON.stringify({ events: [impression()] }), { keyId: 'r0', secret: 'rsecret-old' })).status).toBe(202)
  })

  it('refuses a replayed signature', async () => {
    const body = JSON.stringify({ events: [impression()] })
    const ts = Math.floor(Date.now() / 1000)
    const signature = await signRequest('rsecret-one', ts, 'POST', PATH, body)
    expect((await signedPost(body, { ts, signature })).status).toBe(202)
    expect(await code(await signedPost(body, { ts, signature }))).toEqual([401, 'signature_replayed'])
  })

  it('refuses a stale timestamp, a wrong secret, a changed body and an unknown key id', async () => {
    const body = JSON.stringify({ events: [impression()] })
    expect(await code(await signedPost(body, { ts: Math.floor(Date.now() / 1000) - 301 }))).toEqual([401, 'signature_stale'])
    expect(await code(await signedPost(body, { ts: Math.floor(Date.now() / 1000) + 301 }))).toEqual([401, 'signature_stale'])
    expect(await code(await signedPost(body, { secret: 'guess' }))).toEqual([401, 'unauthorized'])
    const ts = Math.floor(Date.now() / 1000)
    const signature = await signRequest('rsecret-one', ts, 'POST', PATH, body)
    expect(await code(await signedPost(body.replace('ad_1', 'ad_2'), { ts, signature }))).toEqual([401, 'unauthorized'])
    expect(await code(await signedPost(body, { keyId: 'nope' }))).toEqual([401, 'unauthorized'])
    expect(await code(await signedPost(body, { signature: 'not base64!' }))).toEqual([401, 'unauthorized'])
  })

  it('refuses a request signed with a token signing key: token secrets stay on the ad server', async () => {
    const res = await signedPost(JSON.stringify({ events: [impression()] }), { keyId: 'k1', secret: 'secret-one' })
    expect(res.status).toBe(401)
    expect((await res.json<any>()).error).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('token signing key') })
  })
})

describe('POST /v1/events/validate-signature', () => {
  const validate = (body: unknown, headers: Record<string, string> = {}) =>
    SELF.fetch(`${EDGE}/v1/events/validate-signature`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) })

  it('explains a request signature computed for another request', async () => {
    const body = '{"events":[]}'
    const ts = Math.floor(Date.now() / 1000)
    const input = { keyId: 'r1', timestamp: ts, method: 'POST', path: PATH, bodySha256: await sha256Hex(body), signature: await signRequest('rsecret-one', ts, 'POST', PATH, body) }
    expect(await (await validate(input)).json()).toMatchObject({ valid: true, publisherId: 'pub_test', keyId: 'r1' })
    expect(await (await validate({ ...input, signature: await signRequest('x', ts, 'POST', PATH, body) })).json()).toMatchObject({ valid: false, reason: 'unauthorized', message: 'signature does not match' })
    const old = ts - 600
    expect(await (await validate({ ...input, timestamp: old, signature: await signRequest('rsecret-one', old, 'POST', PATH, body) })).json()).toMatchObject({ valid: false, reason: 'signature_stale' })
  })

  it('checks its own headers when the body is empty', async () => {
    const ts = Math.floor(Date.now() / 1000)
    const sig = await signRequest('rsecret-two', ts, 'POST', '/v1/events/validate-signature', '')
    const res = await SELF.fetch(`${EDGE}/v1/events/validate-signature`, { method: 'POST', headers: { 'x-adc-key-id': 'r2', 'x-adc-timestamp': String(ts), 'x-adc-signature': sig } })
    expect(await res.json()).toMatchObject({ valid: true, publisherId: 'pub_other' })
  })

  it('explains tokens: valid, tampered, expired, foreign key', async () => {
    const payload = { impressionId: 'imp_1', campaignId: 'cmp_1', adId: 'ad_1', publisherId: 'pub_test', requestId: 'r1', exp: Math.floor(Date.now() / 1000) + 60 }
    const token = await mintToken(payload, 'k1', 'secret-one')
    expect(await (await validate({ token })).json()).toMatchObject({ valid: true, kind: 'token', publisherId: 'pub_test', payload })
    expect(await (await validate({ token: token.slice(0, -2) + 'AA' })).json()).toMatchObject({ valid: false, reason: 'invalid_token' })
    const expired = await mintToken({ ...payload, exp: 1000 }, 'k1', 'secret-one')
    expect(await (await validate({ token: expired })).json()).toMatchObject({ valid: false, reason: 'token_expired' })
    const foreign = await mintToken(payload, 'k2', 'secret-two')
    expect(await (await validate({ token: foreign })).json()).toMatchObject({ valid: false, reason: 'invalid_token' })
    // A request signing secret (held by apps) cannot mint a token, even for its own publisher.
    const byRequestKey = await mintToken(payload, 'r1', 'rsecret-one')
    expect(await (await validate({ token: byRequestKey })).json()).toMatchObject({ valid: false, reason: 'invalid_token', message: expect.stringContaining('request signing key') })
    const unbooked = await mintToken({ ...payload, campaignId: 'cmp_nobody' }, 'k1', 'secret-one')
    expect(await (await validate({ token: unbooked })).json()).toMatchObject({ valid: false, reason: 'unknown_campaign' })
  })

  it('answers 400 for a body that is neither', async () => {
    expect((await validate({ hello: 1 })).status).toBe(400)
  })
})
