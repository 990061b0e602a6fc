import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { base64UrlDecode, base64UrlEncode, mintToken, verifyToken, type TokenPayload } from './token.js'

const NOW = 1_800_000_000
const secrets: Record<string, string> = { k1: 'secret-one', k2: 'secret-two' }
const secretFor = (id: string) => secrets[id]

const idArb = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/)
const payloadArb: fc.Arbitrary<TokenPayload> = fc.record(
  {
    impressionId: idArb,
    campaignId: idArb,
    adId: idArb,
    publisherId: idArb,
    requestId: idArb,
    exp: fc.integer({ min: NOW + 1, max: NOW + 10_000_000 }),
    url: fc.webUrl({ withQueryParameters: true }),
    channel: fc.constantFrom('web' as const, 'app' as const, 'ctv' as const, 's2s' as const),
  },
  { requiredKeys: ['impressionId', 'campaignId', 'adId', 'publisherId', 'requestId', 'exp'] },
)

describe('signed tokens', () => {
  it('a minted token verifies and returns its payload', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.constantFrom('k1', 'k2'), async (payload, keyId) => {
        const token = await mintToken(payload, keyId, secrets[keyId]!)
        const result = await verifyToken(token, secretFor, NOW)
        expect(result).toEqual({ ok: true, keyId, payload })
      }),
      { numRuns: 100 },
    )
  })

  it('any changed character makes the token fail', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, fc.nat(), fc.integer({ min: 1, max: 127 }), async (payload, pos, delta) => {
        const token = await mintToken(payload, 'k1', secrets.k1!)
        const i = pos % token.length
        const changed = String.fromCharCode((token.charCodeAt(i) + delta) % 128)
        fc.pre(changed !== token[i])
        const tampered = token.slice(0, i) + changed + token.slice(i + 1)
        const result = await verifyToken(tampered, secretFor, NOW)
        expect(result.ok).toBe(false)
      }),
      { numRuns: 300 },
    )
  })

  it('a token signed with another secret under the same key id fails', async () => {
    const payload: TokenPayload = { impressionId: 'i', campaignId: 'c', adId: 'a', publisherId: 'p', requestId: 'r', exp: NOW + 60 }
    const forged = await mintToken(payload, 'k1', 'not-the-secret')
    expect(await verifyToken(forged, secretFor, NOW)).toMatchObject({ ok: false, reason: 'invalid_token', message: 'signature does not match' })
  })

  it('an expired token is token_expired, an unknown key id invalid_token', async () => {
    const payload: TokenPayload = { impressionId: 'i', campaignId: 'c', adId: 'a', publisherId: 'p', requestId: 'r', exp: NOW }
    expect(await verifyToken(await mintToken(payload, 'k1', secrets.k1!), secretFor, NOW)).toMatchObject({ ok: false, reason: 'token_expired' })
    expect(await verifyToken(await mintToken({ ...payload, exp: NOW + 5 }, 'k9', 'x'), secretFor, NOW)).toMatchObject({ ok: false, reason: 'invalid_token', message: 'unknown key id' })
  })

  it('a validly signed payload with a javascript: url is refused', async () => {
    const body = base64UrlEncode(new TextEncoder().encode(JSON.stringify({ impressionId: 'i', campaignId: 'c', adId: 'a', publisherId: 'p', requestId: 'r', exp: NOW + 60, url: 'javascript:alert(1)' })))
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secrets.k1!), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
    const sig = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`v1.k1.${body}`)))
    const result = await verifyToken(`v1.k1.${body}.${base64UrlEncode(sig)}`, secretFor, NOW)
    expect(result).toMatchObject({ ok: false, reason: 'invalid_token' })
  })

  it('arbitrary strings never throw and never verify', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (s) => {
        const result = await verifyToken(`v1.k1.${s}`, secretFor, NOW)
        expect(result.ok).toBe(false)
      }),
      { numRuns: 200 },
    )
  })

  it('base64url round-trips and rejects padding and foreign characters', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      expect(base64UrlDecode(base64UrlEncode(bytes))).toEqual(bytes)
    }))
    expect(base64UrlDecode('YQ==')).toBeNull()
    expect(base64UrlDecode('a+b/')).toBeNull()
  })
})
