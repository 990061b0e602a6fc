import { describe, expect, it } from 'vitest'
import { watermark } from '../../state/expiry.js'
import type { Decoded, Deduped } from '../types.js'
import { decoded, T, useStores } from '../../testing/records.js'
import { createDedupeStep } from './dedupe-step.js'
import { createJoinStage } from './join-step.js'

const newStore = useStores()

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
    expect(join.waiting()).toBe(1)
    const imp = decoded({ type: 'impression', n: 51, impressionId: 'imp_k', channel: 'app' })
    await dedupe(imp)
    await join.step(dd(imp))
    expect(join.drainReleased()).toMatchObject([{ kind: 'ok', value: { ref: click.ref, join: { status: 'joined', impressionTs: T } } }])
    expect(join.waiting()).toBe(0)
  })

  it('orphans a waiting click when the watermark passes its window, then corrects it if the impression arrives within the lateness', async () => {
    const store = newStore()
    const join = createJoinStage({ store })
    const click = decoded({ type: 'click', n: 60, impressionId: 'imp_l', ts: T + 10_000 })
    await join.step(dd(click))
    await join.step(dd(decoded({ type: 'impression', n: 61, impressionId: 'imp_other', ts: T + 45 * 60_000, receivedAt: T + 45 * 60_000 })))
    expect(watermark(store)).toBe(T + 45 * 60_000)
    expect(join.waiting()).toBe(1)
    expect(join.expire()).toMatchObject([{ kind: 'unbilled', reason: 'orphan_click', value: { ref: click.ref } }])
    expect(join.waiting()).toBe(0)
    await join.step(dd(decoded({ type: 'impression', n: 62, impressionId: 'imp_l', ts: T, receivedAt: T + 50 * 60_000 })))
    expect(join.drainReleased()).toMatchObject([{ kind: 'ok', value: { join: { status: 'joined', correction: true } } }])
  })

  it('leaves an orphan alone when its impression reaches the edge after the window plus the lateness', async () => {
    const store = newStore()
    const join = createJoinStage({ store })
    const click = decoded({ type: 'click', n: 80, impressionId: 'imp_m', ts: T + 10_000 })
    await join.step(dd(click))
    await join.step(dd(decoded({ type: 'impression', n: 81, impressionId: 'imp_other2', ts: T + 45 * 60_000, receivedAt: T + 45 * 60_000 })))
    expect(join.expire()).toMatchObject([{ reason: 'orphan_click' }])
    const late = T + 10_000 + 30 * 60_000 + 24 * 60 * 60_000 + 10 * 60_000
    await join.step(dd(decoded({ type: 'impression', n: 82, impressionId: 'imp_m', ts: T, receivedAt: late })))
    expect(join.drainReleased()).toEqual([])
  })
})
