import { idempotencyKey, partitionFor, signRequest, verifyToken } from '@adc/schemas'
import { describe, expect, it } from 'vitest'
import ids from '../../../schemas/vectors/idempotency-keys.json'
import partitions from '../../../schemas/vectors/partitions.json'
import signatures from '../../../schemas/vectors/request-signatures.json'
import tokens from '../../../schemas/vectors/tokens.json'
import { sha256Hex } from '../crypto.js'
import { dedupeShardOf } from '../dedupe/shard.js'
import { checkSignature } from './signing.js'
import { TenantIndex } from './tenants.js'

/** The shared vectors (schemas/vectors), checked inside workerd: its WebCrypto, its TextEncoder, the edge's own code. */
describe('shared test vectors in workerd', () => {
  it('idempotency keys and partitions', async () => {
    for (const c of ids.cases) expect(await idempotencyKey(c.publisherId, c.eventType as 'impression' | 'click', c.eventId)).toBe(c.key)
    for (const c of partitions.cases) expect([partitionFor(c.key, 8), partitionFor(c.key, 32)]).toEqual([c.partitions8, c.partitions32])
    const shardKey = partitions.cases.find((c) => c.key === 'pub_demo\u001f01JD0000')!
    expect(dedupeShardOf('pub_demo', '01jd0000zzzzzzzzzzzzzzzzzz', 8)).toBe(shardKey.partitions8)
  })

  it("request signatures: the edge's signer gives the vector and its checker accepts it", async () => {
    for (const c of signatures.cases) {
      expect(await sha256Hex(c.body)).toBe(c.bodySha256)
      expect(await signRequest(c.secret, c.timestamp, c.method, c.path, c.body)).toBe(c.signature)
      const tenants = new TenantIndex({ version: 1, campaignIds: [], campaignPublishers: {}, publishers: [{ id: 'pub_v', apiKeyHashes: [], publicKeyHashes: [], signingKeys: {}, requestSigningKeys: { kv: c.secret }, appRequestSigningKeys: {}, rateLimit: { perSecond: 1, burst: 1 }, active: true }] })
      const check = await checkSignature({ keyId: 'kv', timestamp: String(c.timestamp), signature: c.signature, method: c.method, path: c.path, bodySha256: c.bodySha256 }, tenants, c.timestamp * 1000)
      expect(check.ok, JSON.stringify(check)).toBe(true)
    }
  })

  it('tokens verify, the invalid ones fail with their reason', async () => {
    for (const c of tokens.valid) {
      expect(await verifyToken(c.token, (id) => (id === c.keyId ? c.secret : undefined), tokens.verifyAt)).toMatchObject({ ok: true, payload: c.payload })
    }
    for (const c of tokens.invalid) {
      expect(await verifyToken(c.token, (id) => (tokens.secrets as Record<string, string>)[id], tokens.verifyAt), c.why).toMatchObject({ ok: false, reason: c.reason })
    }
  })
})
