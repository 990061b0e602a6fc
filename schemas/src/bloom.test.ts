import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BloomFilter, bloomHash1, bloomHash2, bloomHashPair, bloomSizing } from './bloom.js'

describe('BloomFilter', () => {
  it('never forgets a key it was given (no false negatives)', () => {
    fc.assert(fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 500 }), (keys) => {
      const f = new BloomFilter(bloomSizing(1000, 0.01))
      for (const k of keys) f.add(k)
      expect(keys.every((k) => f.has(k))).toBe(true)
    }), { numRuns: 50 })
  })

  it('keeps the false-positive rate near the configured one at capacity', () => {
    const n = 20_000
    const f = new BloomFilter(bloomSizing(n, 0.01))
    for (let i = 0; i < n; i++) f.add(`in-${i}-${(i * 2654435761) >>> 0}`)
    let fp = 0
    const probes = 50_000
    for (let i = 0; i < probes; i++) if (f.has(`out-${i}`)) fp++
    expect(fp / probes).toBeLessThan(0.02)
    expect(f.byteLength / n).toBeLessThan(1.3)
  })

  it('sizes by the standard formulas', () => {
    expect(bloomSizing(1_000_000, 0.01)).toEqual({ bits: 9_585_059, hashes: 7 })
  })

  it('hashes a key in one pass exactly as the two hashes do one at a time', () => {
    const out = new Float64Array(2)
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (key) => {
        bloomHashPair(key, out)
        expect([out[0], out[1]]).toEqual([bloomHash1(key), bloomHash2(key)])
      }),
      { numRuns: 5000 },
    )
  })
})
