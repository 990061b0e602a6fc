import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { envelopeSchema, type Envelope } from '@adc/schemas'
import { PartitionStore } from '../../state/partition-store.js'
import { sweepExpired, watermark } from '../../state/expiry.js'
import { testEnvelope, type TestEventInput } from '../../processor/fixtures.js'
import type { Decoded, Deduped, RawRecord } from '../types.js'
import { createDecodeStep } from './decode-step.js'
import { createDedupeStep } from './dedupe-step.js'
import { createJoinStage } from './join-step.js'
import { createIvtStep } from './ivt-step.js'

const dirs: string[] = []
const stores: PartitionStore[] = []
function newStore(): PartitionStore {
  const dir = mkdtempSync(join(tmpdir(), 'adc-steps-'))
  dirs.push(dir)
  const s = PartitionStore.open(dir, 0)
  stores.push(s)
  return s
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const T = Date.UTC(2026, 10, 23, 9, 0, 0)
let offset = 0
function decoded(i: Partial<TestEventInput> & Pick<TestEventInput, 'type' | 'n'>, at = offset++): Decoded {
  const env: Envelope = envelopeSchema.parse(testEnvelope({ impressionId: `imp_${i.n}`, ts: T, ...i }))
  return { ref: { topic: 'ad-events', partition: 0, offset: at }, payload: JSON.stringify(env), appendedAt: env.receivedAt, envelope: env }
}

describe('decodeStep', () => {
  const decode = createDecodeStep()
  const raw = (payload: string): RawRecord => ({ ref: { topic: 'ad-events', partition: 0, offset: 1 }, payload, appendedAt: 0 })
  it('turns a valid envelope into a decoded event', async () => {
    const r = await decode(raw(JSON.stringify(testEnvelope({ type: 'impression', n: 1, impressionId: 'i1', ts: T }))))
    expect(r.kind).toBe('ok')
  })
  it('keeps non-JSON, other versions and schema violations as bad rows with the payload', async () => {
    expect(await decode(raw('{oops'))).toMatchObject({ kind: 'bad_row', reason: 'bad_envelope', payload: '{oops' })
    expect(await decode(raw('{"v":2}'))).toMatchObject({ kind: 'bad_row', reason: 'unknown_version' })
    const noCampaign = testEnvelope({ type: 'impression', n: 1, impressionId: 'i1', ts: T }) as { event: Record<string, unknown> }
    delete noCampaign.event.campaignId
    const r = await decode(raw(JSON.stringify(noCampaign)))
    expect(r).toMatchObject({ kind: 'bad_row', reason: 'bad_envelope' })
    expect(r.kind === 'bad_row' && r.error).toContain('campaignId')
  })
})

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
    expect(store.get(`d:${imp.envelope.key}`)).toBeUndefined()
    await dedupe(imp)
    await store.commit(imp.ref.offset)
    store.put('~wm', imp.envelope.receivedAt + 2 * 60 * 60_000)
    expect(sweepExpired(store)).toBe(2)
    expect(store.get(`d:${imp.envelope.key}`)).toBeUndefined()
  })
})

describe('joinStep', () => {
  const dd = (d: Decoded): Deduped => ({ ...d, firstSeenOffset: d.ref.offset })
  it('joins a click to a known impression within the web window, orphans one outside it', async () => {
    const store = newStore()
    const dedupe = createDedupeStep({ store })
    const join = createJoinStage({ store })
    const imp = decoded({ type: 'impression', n: 40, impressionId: 'imp_j' })
    await dedupe(imp)
    await join.step(dd(imp))
    expect(await join.step(dd(decoded({ type: 'click', n: 41, impressionId: 'imp_j', ts: T + 60_000 })))).toMatchObject({ kind: 'ok', value: { join: { status: 'joined', impressionTs: T } } })
    expect(await join.step(dd(decoded({ type: 'click', n: 42, impressionId: 'imp_j', ts: T + 31 * 60_000 })))).toMatchObject({ kind: 'unbilled', reason: 'orphan_click' })
  })

  it('holds an early click, releases it when the impression comes, and uses the app window of 24 h', async () => {
    const store = newStore()
    const dedupe = createDedupeStep({ store })
    const join = createJoinStage({ store })
    const click = decoded({ type: 'click', n: 50, impressionId: 'imp_k', channel: 'app', ts: T + 3 * 60 * 60_000 })
    expect(await join.step(dd(click))).toMatchObject({ kind: 'unbilled', reason: 'join_pending' })
    expect(join.expire()).toEqual([])
    const imp = decoded({ type: 'impression', n: 51, impressionId: 'imp_k', channel: 'app' })
    await dedupe(imp)
    await join.step(dd(imp))
    expect(join.drainReleased()).toMatchObject([{ kind: 'ok', value: { ref: click.ref, join: { status: 'joined', impressionTs: T } } }])
  })

  it('orphans a waiting click when the watermark passes its window, then corrects it if the impression arrives within the lateness', async () => {
    const store = newStore()
    const join = createJoinStage({ store })
    const click = decoded({ type: 'click', n: 60, impressionId: 'imp_l', ts: T + 10_000 })
    await join.step(dd(click))
    await join.step(dd(decoded({ type: 'impression', n: 61, impressionId: 'imp_other', ts: T + 45 * 60_000, receivedAt: T + 45 * 60_000 })))
    expect(watermark(store)).toBe(T + 45 * 60_000)
    expect(join.expire()).toMatchObject([{ kind: 'unbilled', reason: 'orphan_click', value: { ref: click.ref } }])
    await join.step(dd(decoded({ type: 'impression', n: 62, impressionId: 'imp_l', ts: T, receivedAt: T + 50 * 60_000 })))
    expect(join.drainReleased()).toMatchObject([{ kind: 'ok', value: { join: { status: 'joined', correction: true } } }])
  })
})

describe('ivtStep', () => {
  const joined = (d: Decoded, impressionTs?: number) => ({ ...d, firstSeenOffset: d.ref.offset, join: { status: 'joined' as const, ...(impressionTs !== undefined ? { impressionTs } : {}) } })
  it('quarantines bots, datacenter traffic, prefetches and fast clicks with the strongest reason and the model version', async () => {
    const ivt = createIvtStep({ store: newStore() })
    expect(await ivt(joined(decoded({ type: 'impression', n: 70, ua: 'curl/8.4.0' })))).toMatchObject({ kind: 'unbilled', reason: 'givt_known_bot', value: { ivt: { score: 1, quarantined: true, modelVersion: expect.stringMatching(/^ivt-/) } } })
    expect(await ivt(joined(decoded({ type: 'impression', n: 71, ipPrefix: '52.1.2.0/24' })))).toMatchObject({ kind: 'unbilled', reason: 'givt_datacenter_ip' })
    expect(await ivt(joined(decoded({ type: 'click', n: 72, prefetch: true })))).toMatchObject({ kind: 'unbilled', reason: 'prefetch_click' })
    expect(await ivt(joined(decoded({ type: 'click', n: 73, ts: T + 300 }), T))).toMatchObject({ kind: 'unbilled', reason: 'sivt_fast_click', value: { ivt: { score: 0.85 } } })
    expect(await ivt(joined(decoded({ type: 'impression', n: 74, ua: null })))).toMatchObject({ kind: 'unbilled', reason: 'givt_missing_ua' })
    expect(await ivt(joined(decoded({ type: 'click', n: 75, ts: T + 5_000 }), T))).toMatchObject({ kind: 'ok', value: { ivt: { score: 0, reasons: [] } } })
  })

  it('flags a burst from one user key within a minute, from the event over the limit on', async () => {
    const ivt = createIvtStep({ store: newStore(), limits: { ipPrefixPerMinute: 1000, userKeyPerMinute: 3, fastClickMs: 1000 } })
    const kinds: string[] = []
    for (let i = 0; i < 5; i++) kinds.push((await ivt(joined(decoded({ type: 'impression', n: 80 + i, userKey: 'u_burst' })))).kind)
    expect(kinds).toEqual(['ok', 'ok', 'ok', 'unbilled', 'unbilled'])
  })
})
