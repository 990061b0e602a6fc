import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { backoffDelay, nextDelay, retryAfterMs } from './backoff.js'

describe('backoff', () => {
  it('draws a full-jitter delay in [0, min(max, base * 2^attempt))', () => {
    fc.assert(fc.property(fc.nat(40), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
      const d = backoffDelay(attempt, { baseMs: 100, maxMs: 10_000 }, () => r)
      expect(d).toBeGreaterThanOrEqual(0)
      expect(d).toBeLessThan(Math.min(10_000, 100 * 2 ** attempt))
    }))
    expect(backoffDelay(3, { baseMs: 100, maxMs: 10_000 }, () => 0.999)).toBe(799)
  })

  it('never retries sooner than Retry-After', () => {
    expect(nextDelay(0, 5000, { baseMs: 100 }, () => 0)).toBe(5000)
    expect(nextDelay(0, 5000, { baseMs: 100 }, () => 0.5)).toBe(5050)
  })

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('2')).toBe(2000)
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000)
    expect(retryAfterMs(null)).toBeUndefined()
    expect(retryAfterMs('soon')).toBeUndefined()
  })
})
