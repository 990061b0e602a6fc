import { bloomHash1, bloomHash2 } from '@adc/schemas'
import { describe, expect, it } from 'vitest'
import { KeyFilter, type KeySource } from './key-filter.js'

/** A committed key set as a KeySource reads it. */
function source(keys: Set<string>): KeySource & { reads: number } {
  const s = {
    reads: 0,
    count: () => keys.size,
    forEachHash(add: (h1: number, h2: number) => void) {
      s.reads++
      for (const k of keys) add(bloomHash1(k), bloomHash2(k))
    },
  }
  return s
}
const has = (f: KeyFilter, k: string): boolean => f.mayHave(bloomHash1(k), bloomHash2(k))

describe('KeyFilter', () => {
  it('answers maybe for every committed key, through builds, adds and invalidations, and no for most others', () => {
    const committed = new Set<string>()
    for (let i = 0; i < 5000; i++) committed.add(`i:imp_${i}`)
    const src = source(committed)
    const f = new KeyFilter(src)
    expect([...committed].every((k) => has(f, k))).toBe(true)
    expect(src.reads).toBe(1)
    // Keys written after the build are added as they are written.
    for (let i = 5000; i < 60_000; i++) {
      committed.add(`i:imp_${i}`)
      f.add(bloomHash1(`i:imp_${i}`), bloomHash2(`i:imp_${i}`))
    }
    expect([...committed].every((k) => has(f, k))).toBe(true)
    // Its capacity (4 × 5000, at least 16k) was reached: it was built again from the source.
    expect(f.builds).toBe(2)
    // Keys written around it (a restore): invalidate, and the next lookup reads them.
    for (let i = 0; i < 100; i++) committed.add(`i:restored_${i}`)
    f.invalidate()
    expect([...committed].every((k) => has(f, k))).toBe(true)
    let maybe = 0
    for (let i = 0; i < 20_000; i++) if (has(f, `i:absent_${i}`)) maybe++
    expect(maybe / 20_000).toBeLessThan(0.03)
  })
})
