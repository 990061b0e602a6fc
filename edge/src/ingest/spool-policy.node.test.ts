import { describe, expect, it } from 'vitest'
import { MAX_RETRY_DELAY_MS, nextRetryDelay } from './spool-policy.js'

describe('nextRetryDelay', () => {
  it('doubles per failed round from the first delay and stops at five minutes', () => {
    const mid = () => 0.5
    expect([1, 2, 3, 4].map((n) => nextRetryDelay(1000, n, mid))).toEqual([1000, 2000, 4000, 8000])
    expect(nextRetryDelay(1000, 40, mid)).toBe(MAX_RETRY_DELAY_MS)
  })

  it('jitters within ±20 %', () => {
    expect(nextRetryDelay(1000, 1, () => 0)).toBe(800)
    expect(nextRetryDelay(1000, 1, () => 1)).toBe(1200)
  })
})
