import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { idempotencyKey, murmur2, partitionFor, partitionKey } from './keys.js'
import { ID_PATTERN } from './ids.js'

const idArb = fc.stringMatching(ID_PATTERN)

describe('idempotencyKey', () => {
  it('is 32 lower-case hex characters (16 bytes of SHA-256)', async () => {
    const key = await idempotencyKey('pub_demo', 'impression', '01HZZZZZZZZZZZZZZZZZZZZZZZ')
    expect(key).toMatch(/^[0-9a-f]{32}$/)
  })

  it('matches the documented construction, so other languages can reproduce it', async () => {
    const { createHash } = await import('node:crypto')
    const expected = createHash('sha256').update('pub_demo\u001fclick\u001f01J0000000000000000000000A').digest('hex').slice(0, 32)
    expect(await idempotencyKey('pub_demo', 'click', '01J0000000000000000000000A')).toBe(expected)
  })

  it('is stable: the same send always gives the same key', async () => {
    await fc.assert(fc.asyncProperty(idArb, fc.constantFrom('impression', 'click' as const), idArb, async (p, t, e) => {
      expect(await idempotencyKey(p, t, e)).toBe(await idempotencyKey(p, t, e))
    }))
  })

  it('differs when any field differs (no ambiguity between fields)', async () => {
    await fc.assert(fc.asyncProperty(idArb, idArb, idArb, async (a, b, c) => {
      fc.pre(a !== b)
      expect(await idempotencyKey(a, 'impression', c)).not.toBe(await idempotencyKey(b, 'impression', c))
      expect(await idempotencyKey(a, 'impression', c)).not.toBe(await idempotencyKey(a, 'click', c))
    }), { numRuns: 200 })
  })
})

describe('partitioning', () => {
  it('uses impressionId as the partition key so a click meets its impression', () => {
    expect(partitionKey({ impressionId: 'imp_1' })).toBe('imp_1')
  })

  it('reproduces Kafka murmur2 reference values', () => {
    // Reference values from the Java client's Utils.murmur2 (same as kafkajs's murmur2 tests).
    expect(murmur2('21')).toBe(-973932308)
    expect(murmur2('foobar')).toBe(-790332482)
    expect(murmur2('a-little-bit-long-string')).toBe(-985981536)
    expect(murmur2('a-little-bit-longer-string')).toBe(-1486304829)
    expect(murmur2('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8')).toBe(-58897971)
    expect(murmur2('abc')).toBe(479470107)
  })

  it('always lands in [0, n)', () => {
    fc.assert(fc.property(fc.string(), fc.integer({ min: 1, max: 1024 }), (k, n) => {
      const p = partitionFor(k, n)
      expect(p).toBeGreaterThanOrEqual(0)
      expect(p).toBeLessThan(n)
    }))
  })
})
