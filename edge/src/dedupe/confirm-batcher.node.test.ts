import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConfirmBatcher } from './confirm-batcher.js'

describe('ConfirmBatcher', () => {
  it('one flush confirms, per shard, every key added while it waited; a request arriving after the take schedules the next', async () => {
    const b = new ConfirmBatcher()
    const calls: [number, string[]][] = []
    const send = async (shard: number, keys: string[]) => { calls.push([shard, keys]) }
    b.add(1, ['a', 'b'])
    const first = b.flush(30, send)
    b.add(1, ['c'])
    b.add(2, ['d'])
    const second = b.flush(30, send)
    await second
    expect(calls).toHaveLength(0)
    await first
    expect(calls).toEqual([[1, ['a', 'b', 'c']], [2, ['d']]])
    b.add(2, ['e'])
    await b.flush(0, send)
    expect(calls[2]).toEqual([2, ['e']])
  })

  it('answers has(key) for every key added until its confirm call settled, succeeded or failed', async () => {
    const b = new ConfirmBatcher()
    b.add(1, ['a'])
    b.add(2, ['b'])
    expect([b.has('a'), b.has('b'), b.has('c')]).toEqual([true, true, false])
    let release!: () => void
    const inFlight = new Promise<void>((r) => { release = r })
    const flushing = b.flush(0, async (shard) => {
      if (shard === 1) await inFlight
      else throw new Error('shard down')
    })
    await new Promise((r) => setTimeout(r, 5))
    // a's confirm is in flight: still answered here; b's call failed: forgotten (core dedupes a retry)
    expect([b.has('a'), b.has('b')]).toEqual([true, false])
    release()
    await flushing
    expect(b.has('a')).toBe(false)
  })

  it('a failing shard does not keep the others from being confirmed, and the flush never rejects', async () => {
    const b = new ConfirmBatcher()
    const confirmed: string[] = []
    b.add(1, ['a'])
    b.add(2, ['b'])
    await expect(b.flush(0, async (shard, keys) => {
      if (shard === 1) throw new Error('shard down')
      confirmed.push(...keys)
    })).resolves.toBeUndefined()
    expect(confirmed).toEqual(['b'])
  })

  it('every key added is sent exactly once, whatever the interleaving of adds and flushes', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ shard: fc.integer({ min: 0, max: 3 }), n: fc.integer({ min: 0, max: 4 }), delay: fc.constantFrom(0, 1, 3) }), { maxLength: 30 }),
      async (steps) => {
        const b = new ConfirmBatcher()
        const sent: string[] = []
        const flushes: Promise<void>[] = []
        const added: string[] = []
        let k = 0
        for (const s of steps) {
          const keys = Array.from({ length: s.n }, () => `${s.shard}:${k++}`)
          added.push(...keys)
          b.add(s.shard, keys)
          flushes.push(b.flush(s.delay, async (shard, list) => {
            for (const key of list) expect(key.startsWith(`${shard}:`)).toBe(true)
            sent.push(...list)
          }))
          if (s.delay === 3) await new Promise((r) => setTimeout(r, 2))
        }
        await Promise.all(flushes)
        // a last flush takes what nobody flushed (keys added after the final take)
        await b.flush(0, async (_shard, list) => { sent.push(...list) })
        expect([...sent].sort()).toEqual([...added].sort())
      },
    ), { numRuns: 60 })
  })
})
