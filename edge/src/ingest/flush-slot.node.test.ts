import { describe, expect, it } from 'vitest'
import { FlushSlot } from './flush-slot.js'
import { ConfirmBatcher } from '../dedupe/confirm-batcher.js'

describe('FlushSlot', () => {
  it('one flusher at a time; a claim its request never released is taken over once stale', () => {
    const slot = new FlushSlot()
    expect(slot.claim(50, 1_000)).toBe(true)
    expect(slot.claim(50, 1_500)).toBe(false)
    // The holder's request was cancelled mid-sleep: no release ever comes.
    expect(slot.claim(50, 1_999)).toBe(false)
    expect(slot.claim(50, 2_000)).toBe(true)
    slot.release()
    expect(slot.claim(50, 2_001)).toBe(true)
    // Longer delays wait 20 of them before taking over.
    expect(slot.claim(500, 2_001 + 9_999)).toBe(false)
    expect(slot.claim(500, 2_001 + 10_000)).toBe(true)
  })

  it('a batcher whose flusher vanished mid-sleep still confirms the pending keys once the claim is stale', async () => {
    const b = new ConfirmBatcher()
    const sent: string[] = []
    b.add(1, ['a'])
    // The flusher of 'a' sleeps far longer than a live one would: its request stands cancelled.
    void b.flush(600_000, async (_s, keys) => { sent.push(...keys) })
    b.add(1, ['b'])
    await b.flush(0, async (_s, keys) => { sent.push(...keys) })
    expect(sent).toEqual([])
    await new Promise((r) => setTimeout(r, 1_100))
    await b.flush(0, async (_s, keys) => { sent.push(...keys) })
    expect(sent).toEqual(['a', 'b'])
  }, 10_000)
})
