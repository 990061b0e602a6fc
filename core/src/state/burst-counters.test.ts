import { afterEach, describe, expect, it } from 'vitest'
import { advanceWatermark, sweepExpired } from './expiry.js'
import { changelogReplay } from '../testing/changelog-replay.js'
import { PartitionStore } from './partition-store.js'
import { tempDirs } from '../testing/temp-dirs.js'

const dirs = tempDirs('adc-bursts-')
const fresh = (): string => dirs.make()
afterEach(() => dirs.removeAll())

const M = Math.floor(Date.UTC(2026, 10, 23, 8, 0, 0) / 60_000)

describe('burst counters', () => {
  it('count per kind, value and minute across commits, read without counting, and go two minutes after their own', async () => {
    const s = PartitionStore.open(fresh(), 0)
    expect(s.bursts.count('ip', '198.51.1.0/24', M, true)).toBe(1)
    expect(s.bursts.count('ip', '198.51.1.0/24', M, true)).toBe(2)
    expect(s.bursts.count('uk', '198.51.1.0/24', M, true)).toBe(1) // another kind
    expect(s.bursts.count('ip', '198.51.1.0/24', M + 1, true)).toBe(1) // another minute
    await s.commit(3)
    expect(s.bursts.count('ip', '198.51.1.0/24', M, false)).toBe(2)
    expect(s.bursts.count('ip', '198.51.1.0/24', M, true)).toBe(3)
    expect(s.bursts.count('uk', 'ü', M, false)).toBe(0)
    await s.commit(4)
    advanceWatermark(s, (M + 3) * 60_000 - 1)
    sweepExpired(s)
    expect(s.bursts.count('ip', '198.51.1.0/24', M, false)).toBe(3)
    advanceWatermark(s, (M + 3) * 60_000)
    sweepExpired(s)
    expect(s.bursts.count('ip', '198.51.1.0/24', M, false)).toBe(0)
    expect(s.bursts.count('ip', '198.51.1.0/24', M + 1, false)).toBe(1)
    await s.commit(5)
    expect(s.bursts.stats().keys).toBe(1)
    await s.close()
  })

  it('travel through the changelog and snapshots to the same counts, a dropped minute staying dropped', async () => {
    const a = PartitionStore.open(fresh(), 0)
    const { batch, rebuilt } = changelogReplay(a)
    await batch(1, () => {
      a.bursts.count('ip', 'x', M, true)
      a.bursts.count('uk', 'y:z', M, true)
      a.bursts.count('uk', 'w', M + 5, true)
    })
    await batch(2, () => {
      advanceWatermark(a, (M + 3) * 60_000)
      sweepExpired(a)
    })
    await batch(3, () => a.bursts.count('uk', 'y:z', M, true)) // a late event in the dropped minute
    const [b, c] = await rebuilt(fresh)
    for (const s of [a, b, c]) {
      expect(s.bursts.count('ip', 'x', M, false)).toBe(0)
      expect(s.bursts.count('uk', 'y:z', M, false)).toBe(1)
      expect(s.bursts.count('uk', 'w', M + 5, false)).toBe(1)
      expect(s.bursts.stats().keys).toBe(2)
    }
    for (const s of [a, b, c]) await s.close()
  })
})
