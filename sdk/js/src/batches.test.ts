import { MAX_BATCH_BYTES, MAX_BEACON_BYTES } from '@adc/schemas/limits'
import { describe, expect, it } from 'vitest'
import { planBatches } from './batches.js'
import type { QueuedEvent } from './types.js'

function ev(i: number, type: 'impression' | 'click' = 'impression', pad = 0): QueuedEvent {
  const json = JSON.stringify({ eventId: `E${String(i).padStart(25, '0')}`, impressionId: `imp_${i}`, pad: 'x'.repeat(pad) })
  return { type, eventId: `E${String(i).padStart(25, '0')}`, json, bytes: new TextEncoder().encode(json).length }
}

describe('planBatches', () => {
  it('splits at 500 events per body, one route per type, keeping order', () => {
    const events = [...Array.from({ length: 1201 }, (_, i) => ev(i)), ev(5000, 'click')]
    const { batches } = planBatches('batch', events)
    expect(batches.map((b) => [b.path, b.events.length])).toEqual([
      ['/v1/events/impressions:batch', 500], ['/v1/events/impressions:batch', 500], ['/v1/events/impressions:batch', 201], ['/v1/events/clicks:batch', 1],
    ])
    expect(batches.flatMap((b) => b.events).slice(0, 1201)).toEqual(events.slice(0, 1201))
    for (const b of batches) expect(JSON.parse(b.body).events).toHaveLength(b.events.length)
  })

  it('keeps every body within the byte limit, measured as sent', () => {
    const events = Array.from({ length: 300 }, (_, i) => ev(i, i % 3 === 0 ? 'click' : 'impression', 700 + (i % 50)))
    for (const [route, limit] of [['beacon', MAX_BEACON_BYTES], ['batch', MAX_BATCH_BYTES]] as const) {
      const { batches } = planBatches(route, events)
      for (const b of batches) expect(new TextEncoder().encode(b.body).length).toBeLessThanOrEqual(limit)
      expect(batches.reduce((n, b) => n + b.events.length, 0)).toBe(300)
    }
    const beacon = planBatches('beacon', events).batches
    expect(beacon.length).toBeGreaterThan(1)
    // The beacon route mixes types; each event says which it is.
    expect(JSON.parse(beacon[0]!.body).events.slice(0, 2).map((e: { type: string }) => e.type)).toEqual(['click', 'impression'])
  })

  it('sets apart an event too large for any body', () => {
    const { batches, oversized } = planBatches('beacon', [ev(1), ev(2, 'impression', MAX_BEACON_BYTES), ev(3)])
    expect(oversized.map((e) => e.eventId)).toEqual([ev(2).eventId])
    expect(batches[0]!.events).toHaveLength(2)
  })
})
