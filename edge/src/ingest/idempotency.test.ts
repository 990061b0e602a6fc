import { idempotencyKey } from '@adc/schemas'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { idempotencyKeyOf, sha256HexPrefix } from './idempotency.js'

const webCryptoHex = async (bytes: Uint8Array) => {
  let out = ''
  for (const b of new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))) out += b.toString(16).padStart(2, '0')
  return out
}

describe('idempotencyKeyOf', () => {
  it('is the idempotency key of schemas for any publisher, type and event id', async () => {
    expect(idempotencyKeyOf('pub_test', 'impression', '01JD0000000000000000000000')).toBe(await idempotencyKey('pub_test', 'impression', '01JD0000000000000000000000'))
    await fc.assert(fc.asyncProperty(
      fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('impression' as const, 'click' as const), fc.string({ unit: 'binary', maxLength: 64 }),
      async (publisherId, type, eventId) => {
        expect(idempotencyKeyOf(publisherId, type, eventId)).toBe(await idempotencyKey(publisherId, type, eventId))
      },
    ), { numRuns: 300 })
  })

  it('hashes like WebCrypto at every padding boundary (0 to 200 bytes) and for the FIPS 180-4 vectors', async () => {
    for (let n = 0; n <= 200; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n) & 0xff)
      expect(sha256HexPrefix(bytes)).toBe(await webCryptoHex(bytes))
    }
    expect(sha256HexPrefix(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    expect(sha256HexPrefix(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })
})
