import { describe, expect, it } from 'vitest'
import { sweepExpired } from '../../state/expiry.js'
import { decoded, T, useStores } from '../../testing/records.js'
import { deliveryTimeOf } from '../../state/delivery-index.js'
import { impressionKey, impressionScope } from '../../state/keys.js'
import { createDedupeStep } from './dedupe-step.js'

const newStore = useStores()

describe('dedupeStep', () => {
  it('marks a re-delivered event duplicate_delivery, a second impression duplicate_impression, a second click repeat_click', async () => {
    const store = newStore()
    const dedupe = createDedupeStep({ store })
    const imp = decoded({ type: 'impression', n: 10, impressionId: 'imp_a' })
    expect((await dedupe(imp)).kind).toBe('ok')
    expect(await dedupe({ ...imp, ref: { ...imp.ref, offset: imp.ref.offset + 100 } })).toMatchObject({ kind: 'unbilled', reason: 'duplicate_delivery', value: { firstSeenOffset: imp.ref.offset } })
    expect(await dedupe(decoded({ type: 'impression', n: 11, impressionId: 'imp_a' }))).toMatchObject({ kind: 'unbilled', reason: 'duplicate_impression' })
    expect((await dedupe(decoded({ type: 'click', n: 12, impressionId: 'imp_a' }))).kind).toBe('ok')
    expect(await dedupe(decoded({ type: 'click', n: 13, impressionId: 'imp_a' }))).toMatchObject({ kind: 'unbilled', reason: 'repeat_click' })
  })

  it('calls a resend of an event id duplicate_delivery whatever ts and impression id it carries (the bucket follows the event id)', async () => {
    const store = newStore()
    const dedupe = createDedupeStep({ store })
    const H = 60 * 60_000
    const first = decoded({ type: 'impression', n: 15, impressionId: 'imp_r1', ts: T, receivedAt: T + 1000 })
    const resend = decoded({ type: 'impression', n: 15, impressionId: 'imp_r2', ts: T + 2 * H + 5 * 60_000, receivedAt: T + 2 * H })
    expect(resend.envelope.key).toBe(first.envelope.key)
    expect((await dedupe(first)).kind).toBe('ok')
    await store.commit(first.ref.offset)
    expect(await dedupe(resend)).toMatchObject({ kind: 'unbilled', reason: 'duplicate_delivery', value: { firstSeenOffset: first.ref.offset } })
    // Within one batch too (nothing committed in between).
    const other = newStore()
    const dedupe2 = createDedupeStep({ store: other })
    expect((await dedupe2(first)).kind).toBe('ok')
    expect(await dedupe2(resend)).toMatchObject({ kind: 'unbilled', reason: 'duplicate_delivery' })
  })

  it('does not call a record a duplicate of itself when its own offset is read again', async () => {
    const store = newStore()
    const dedupe = createDedupeStep({ store })
    const imp = decoded({ type: 'impression', n: 20 })
    await dedupe(imp)
    await store.commit(imp.ref.offset)
    expect((await dedupe(imp)).kind).toBe('ok')
  })

  it('forgets keys once the watermark passes their TTL, and nothing of a discarded batch stays', async () => {
    const store = newStore()
    const dedupe = createDedupeStep({ store, ttlMs: 60 * 60_000 })
    const imp = decoded({ type: 'impression', n: 30 })
    await dedupe(imp)
    store.discard()
    expect(store.deliveries.firstSeen(imp.envelope.key, deliveryTimeOf(imp.envelope.event.eventId), imp.envelope.receivedAt)).toBeUndefined()
    await dedupe(imp)
    await store.commit(imp.ref.offset)
    expect(store.deliveries.firstSeen(imp.envelope.key, deliveryTimeOf(imp.envelope.event.eventId), imp.envelope.receivedAt)).toBe(imp.ref.offset)
    store.put('~wm', imp.envelope.receivedAt + 2 * 60 * 60_000)
    expect(store.impressions.stats()).toMatchObject({ keys: 1, hours: 1 })
    // Nothing on the minute schedule: the impression state and the delivery key go with their hours.
    expect(sweepExpired(store)).toBe(0)
    expect(store.deliveries.firstSeen(imp.envelope.key, deliveryTimeOf(imp.envelope.event.eventId), imp.envelope.receivedAt)).toBeUndefined()
    expect(store.get(impressionKey(impressionScope(imp.envelope.event.publisherId, imp.envelope.event.impressionId)))).toBeUndefined()
    await store.commit(imp.ref.offset + 1)
    expect(store.deliveries.stats()).toMatchObject({ keys: 0, buckets: 0 })
    expect(store.impressions.stats()).toMatchObject({ keys: 0, hours: 0 })
    expect((await dedupe({ ...imp, ref: { ...imp.ref, offset: imp.ref.offset + 5 } })).kind).toBe('ok')
  })

  it('judges a repeat against the previous sighting across midnight and days, and keeps the key while sightings continue', async () => {
    const store = newStore()
    const dedupe = createDedupeStep({ store })
    const H = 60 * 60_000
    const at = (n: number, hours: number) => decoded({ type: 'impression', n, impressionId: 'imp_h', ts: T + hours * H, receivedAt: T + hours * H })
    expect((await dedupe(at(70, 0))).kind).toBe('ok')
    expect(await dedupe(at(71, 20))).toMatchObject({ reason: 'duplicate_impression' })
    await store.commit(1_000_000)
    // Past the first sighting's TTL (25 h) but within 24 h of the last one: the key must survive the sweep.
    store.put('~wm', T + 26 * H)
    sweepExpired(store)
    expect(await dedupe(at(72, 30))).toMatchObject({ reason: 'duplicate_impression' })
    expect((await dedupe(at(73, 60))).kind).toBe('ok')
  })
})
