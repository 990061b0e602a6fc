import { describe, expect, it } from 'vitest'
import { DAY_MS, HOUR_MS, TTL_MARGIN_MS, minuteRowsKeptFrom, planRollupRead, retainedRange } from './rollup-plan.js'

const NOW = Date.parse('2026-11-22T12:20:00Z')
const M = 60_000
const H = HOUR_MS
const kept = minuteRowsKeptFrom(NOW, 35) // 2026-10-18T13:20Z
const plan = (from: number, to: number, granularity: 'minute' | 'hour' = 'hour', minuteRollupDays = 35) =>
  planRollupRead({ from, to, granularity, now: NOW, minuteRollupDays })

describe('planRollupRead', () => {
  it('reads minute rows only while they are a margin away from their TTL', () => {
    expect(kept).toBe(NOW - 35 * DAY_MS + TTL_MARGIN_MS)
    expect(minuteRowsKeptFrom(NOW, 0)).toBe(-Infinity)
  })

  it('keeps a minute request within the retention on the minute rollup', () => {
    expect(plan(NOW - 2 * H, NOW, 'minute')).toEqual({ granularity: 'minute', from: NOW - 2 * H, to: NOW, minutes: [[NOW - 2 * H, NOW]] })
    expect(plan(NOW - 400 * DAY_MS, NOW, 'minute', 0).granularity).toBe('minute')
  })

  it('reads whole hours hourly and the partial hours at both ends per minute', () => {
    const from = NOW - 5 * H // 07:20
    expect(plan(from, NOW)).toEqual({
      granularity: 'hour', from, to: NOW,
      hours: [NOW - 5 * H + 40 * M, NOW - 20 * M], minutes: [[from, NOW - 5 * H + 40 * M], [NOW - 20 * M, NOW]],
    })
    expect(plan(NOW - 20 * M, NOW)).toEqual({ granularity: 'hour', from: NOW - 20 * M, to: NOW, minutes: [[NOW - 20 * M, NOW]] })
    expect(plan(NOW - 25 * M, NOW - 5 * M)).toEqual({ granularity: 'hour', from: NOW - 25 * M, to: NOW - 5 * M, minutes: [[NOW - 25 * M, NOW - 5 * M]] })
  })

  it('widens a partial hour whose minutes may have expired, and serves a minute request reaching there per hour', () => {
    const from = kept - 3 * DAY_MS - 7 * M
    const p = plan(from, NOW - DAY_MS - 10 * M, 'minute')
    expect(p.granularity).toBe('hour')
    expect(p.from).toBe(Math.floor(from / H) * H)
    expect(p.hours).toEqual([p.from, NOW - DAY_MS - 20 * M])
    expect(p.minutes).toEqual([[NOW - DAY_MS - 20 * M, NOW - DAY_MS - 10 * M]])
    // Both ends expired: whole hours only.
    const old = plan(kept - 10 * DAY_MS + 5 * M, kept - 9 * DAY_MS + 5 * M)
    expect(old.minutes).toEqual([])
    expect([old.to - old.from, old.from % H, old.to % H]).toEqual([25 * H, 0, 0])
  })

  it('cuts every range on hour boundaries, so pieces never overlap and cover the answered range', () => {
    for (let i = 0; i < 500; i++) {
      const from = NOW - Math.floor(Math.random() * 60 * DAY_MS)
      const to = Math.min(NOW + H, from + 1 + Math.floor(Math.random() * 10 * DAY_MS))
      const p = plan(from, to, Math.random() < 0.5 ? 'minute' : 'hour')
      const pieces = [...(p.hours ? [p.hours] : []), ...p.minutes].sort((a, b) => a[0] - b[0])
      expect(pieces[0]![0]).toBe(p.from)
      expect(pieces.at(-1)![1]).toBe(p.to)
      for (let k = 1; k < pieces.length; k++) expect(pieces[k]![0]).toBe(pieces[k - 1]![1])
      for (const [a] of p.minutes) expect(a).toBeGreaterThanOrEqual(kept)
      if (p.hours) expect([p.hours[0] % H, p.hours[1] % H]).toEqual([0, 0])
      expect(p.from).toBeLessThanOrEqual(from)
      expect(p.to).toBeGreaterThanOrEqual(to)
    }
  })
})

describe('retainedRange', () => {
  // 731 days before NOW plus the margin is 2024-11-21T13:20Z: the first whole hour kept is 14:00.
  const bound = Date.parse('2024-11-21T14:00:00Z')

  it('moves a range reaching before the hourly retention up to the first whole hour still kept', () => {
    expect(retainedRange(NOW - 800 * DAY_MS, NOW, NOW, 731)).toEqual({ from: bound, to: NOW })
    expect(retainedRange(bound + 5 * M, NOW, NOW, 731)).toEqual({ from: bound + 5 * M, to: NOW })
  })

  it('answers nothing for a range wholly before it, and everything when the rollups are kept forever', () => {
    expect(retainedRange(NOW - 800 * DAY_MS, bound, NOW, 731)).toBeUndefined()
    expect(retainedRange(NOW - 800 * DAY_MS, bound + 1, NOW, 731)).toEqual({ from: bound, to: bound + 1 })
    expect(retainedRange(NOW - 8000 * DAY_MS, NOW, NOW, 0)).toEqual({ from: NOW - 8000 * DAY_MS, to: NOW })
  })
})
