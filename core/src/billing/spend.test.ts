import { describe, expect, it } from 'vitest'
import { spendMicros } from './snapshots.js'

/**
 * Spend in integer micros is exact for any count a line can reach: a campaign at 1.5 M events/s
 * puts a billion impressions of one publisher into a day, and impressions × price then passes 2^53.
 */
describe('spendMicros', () => {
  it('prices CPM, vCPM and CPC exactly, rounding down per line, past 2^53 micros of product', () => {
    expect(spendMicros('cpm', 2000, 3, 0)).toBe(6)
    expect(spendMicros('cpm', 1999, 3, 0)).toBe(5)
    // 1,000,000,001 × 9,999,999 = 9,999,999,009,999,999 (above 2^53): 9,999,999,009,999 micros, not ...010,000.
    expect(spendMicros('cpm', 9_999_999, 1_000_000_001, 0)).toBe(9_999_999_009_999)
    expect(spendMicros('vcpm', 9_999_999, 2_000_000_000, 0, 1_000_000_001)).toBe(9_999_999_009_999)
    expect(spendMicros('cpc', 500_000, 0, 3)).toBe(1_500_000)
    expect(spendMicros('flat', 1, 1, 1)).toBe(0)
  })
})
