import { describe, expect, it } from 'vitest'
import { RECEIVE_TIME_LEAD_MS, createReceiveClock } from './receive-time.js'

describe('receive time', () => {
  it('gives requests read in the same millisecond times of their own, and follows the clock', () => {
    let now = 1_000
    const stamp = createReceiveClock(() => now)
    expect([stamp(), stamp(), stamp()]).toEqual([1_000, 1_001, 1_002])
    now = 1_010
    expect(stamp()).toBe(1_010)
    now = 1_011
    expect(stamp()).toBe(1_011)
  })

  it('never runs more than its lead ahead of the clock', () => {
    let now = 5_000
    const stamp = createReceiveClock(() => now)
    const times = Array.from({ length: 200 }, () => stamp())
    expect(Math.max(...times)).toBe(5_000 + RECEIVE_TIME_LEAD_MS)
    expect(new Set(times).size).toBe(RECEIVE_TIME_LEAD_MS + 1)
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!)
    // A clock that steps back (an NTP correction): the lead bounds the time, even below the last one.
    now = 4_990
    expect(stamp()).toBe(4_990 + RECEIVE_TIME_LEAD_MS)
    now = 6_000
    expect(stamp()).toBe(6_000)
  })
})
