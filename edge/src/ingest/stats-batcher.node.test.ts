import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { StatsBatcher } from './stats-batcher.js'

const MINUTE = 60_000
const statuses = ['accepted', 'duplicate', 'rejected', 'failed', 'queued'] as const

describe('StatsBatcher', () => {
  it('sums per publisher and minute; failed and queued events are not counted', () => {
    const b = new StatsBatcher()
    const t = 10 * MINUTE
    b.add('p1', [{ status: 'accepted' }, { status: 'rejected', code: 'invalid_event' }, { status: 'failed', code: 'upstream_unavailable' }], t + 5)
    b.add('p1', [{ status: 'duplicate' }, { status: 'rejected', code: 'invalid_event' }], t + 59_999)
    b.add('p1', [{ status: 'accepted' }], t + MINUTE)
    b.add('p2', [{ status: 'queued' }], t)
    const records = b.take(t + MINUTE)
    expect(records.map((r) => r.value)).toEqual([
      expect.objectContaining({ v: 1, kind: 'edge_stats', publisherId: 'p1', minute: t, received: 4, accepted: 1, duplicate: 1, rejected: 2, rejectedByReason: { invalid_event: 2 } }),
      expect.objectContaining({ publisherId: 'p1', minute: t + MINUTE, received: 1, accepted: 1 }),
    ])
    expect(new Set(records.map((r) => (r.value as { batchId: string }).batchId)).size).toBe(2)
    expect(b.take()).toEqual([])
  })

  it('one flush takes what every request added while it waited; a request arriving after the take schedules the next', async () => {
    const b = new StatsBatcher()
    const sent: unknown[][] = []
    const send = async (records: { value: unknown }[]) => { sent.push(records.map((r) => r.value)) }
    b.add('p', [{ status: 'accepted' }], 0)
    const first = b.flush(30, send)
    b.add('p', [{ status: 'accepted' }, { status: 'duplicate' }], 0)
    const second = b.flush(30, send)
    await second
    expect(sent).toHaveLength(0)
    await first
    expect(sent).toEqual([[expect.objectContaining({ accepted: 2, duplicate: 1, received: 3 })]])
    b.add('p', [{ status: 'rejected', code: 'clock_skew' }], 0)
    await b.flush(0, send)
    expect(sent[1]).toEqual([expect.objectContaining({ rejected: 1, rejectedByReason: { clock_skew: 1 } })])
  })

  it('every counted event leaves in exactly one record, however adds, flushes and takes interleave', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({
        publisher: fc.constantFrom('a', 'b'), minute: fc.integer({ min: 0, max: 2 }),
        statuses: fc.array(fc.constantFrom(...statuses), { maxLength: 5 }), flush: fc.boolean(), delay: fc.constantFrom(0, 1, 3),
      }), { maxLength: 30 }),
      async (steps) => {
        const b = new StatsBatcher()
        const got = { accepted: 0, duplicate: 0, rejected: 0 }
        const send = async (records: { value: unknown }[]) => {
          for (const r of records) {
            const v = r.value as typeof got
            got.accepted += v.accepted
            got.duplicate += v.duplicate
            got.rejected += v.rejected
          }
        }
        const want = { accepted: 0, duplicate: 0, rejected: 0 }
        const flushes: Promise<void>[] = []
        for (const s of steps) {
          b.add(s.publisher, s.statuses.map((status) => ({ status })), s.minute * MINUTE)
          for (const st of s.statuses) if (st in want) want[st as keyof typeof want]++
          if (s.flush) flushes.push(b.flush(s.delay, send))
        }
        flushes.push(b.flush(0, send))
        await Promise.all(flushes)
        // Anything a still-sleeping flush has not taken yet is taken by the flush that follows it.
        await b.flush(0, send)
        expect(got).toEqual(want)
      },
    ), { numRuns: 100 })
  })
})
