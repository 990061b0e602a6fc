import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { allVectors, render, VECTORS_DIR } from '../scripts/vectors.js'
import { envelopeSchema } from './envelope.js'
import { idempotencyKey, partitionFor } from './keys.js'
import { signRequest } from './signing.js'
import { mintToken, verifyToken } from './token.js'

const read = (name: string) => JSON.parse(readFileSync(join(VECTORS_DIR, name), 'utf8'))

describe('test vectors', () => {
  it('the committed files are what the reference code computes (run `npm run -w schemas vectors` after a change)', async () => {
    for (const [name, value] of Object.entries(await allVectors())) {
      expect(readFileSync(join(VECTORS_DIR, name), 'utf8'), name).toBe(render(value))
    }
  })

  it('idempotency keys and partitions reproduce', async () => {
    for (const c of read('idempotency-keys.json').cases) expect(await idempotencyKey(c.publisherId, c.eventType, c.eventId)).toBe(c.key)
    for (const c of read('partitions.json').cases) {
      expect([partitionFor(c.key, 8), partitionFor(c.key, 32)]).toEqual([c.partitions8, c.partitions32])
    }
  })

  it('request signatures reproduce', async () => {
    for (const c of read('request-signatures.json').cases) expect(await signRequest(c.secret, c.timestamp, c.method, c.path, c.body)).toBe(c.signature)
  })

  it('tokens mint to the same bytes, verify, and the invalid ones fail with their reason', async () => {
    const v = read('tokens.json')
    for (const c of v.valid) {
      expect(await mintToken(c.payload, c.keyId, c.secret)).toBe(c.token)
      expect(await verifyToken(c.token, (id) => (id === c.keyId ? c.secret : undefined), v.verifyAt)).toEqual({ ok: true, keyId: c.keyId, payload: c.payload })
    }
    for (const c of v.invalid) expect(await verifyToken(c.token, (id) => v.secrets[id], v.verifyAt), c.why).toMatchObject({ ok: false, reason: c.reason })
  })

  it('envelopes round-trip and the invalid ones are refused', () => {
    const v = read('envelopes.json')
    for (const c of v.valid) {
      expect(JSON.parse(JSON.stringify(envelopeSchema.parse(c.input))), c.why).toEqual(c.output)
      expect(JSON.parse(JSON.stringify(envelopeSchema.parse(c.output))), c.why).toEqual(c.output)
    }
    for (const c of v.invalid) expect(envelopeSchema.safeParse(c.input).success, c.why).toBe(false)
  })
})
