import { JOIN_LATENESS_MS, joinWindowMs, seenWithinHorizon, withinJoinWindow } from './rules.js'

/**
 * The rules of rules/rules.ts as a plain, one-event-at-a-time program with no storage, no sweeps and
 * no SQL: what the processor and the billing job must both compute. Used by the property tests
 * (rules/two-engines.property.test.ts) as the oracle.
 */
/** Generated days per run of the two-engine property test (override with RULES_PROPERTY_RUNS). */
export const PROPERTY_RUNS_DEFAULT = 25

export interface ModelEvent {
  /** Unique per log record (a re-delivery is another record with the same key). */
  id: string
  key: string
  type: 'impression' | 'click'
  /** The publisher whose credential sent it: an impression id names an impression only within it. */
  publisherId: string
  impressionId: string
  ts: number
  receivedAt: number
  channel: string
  /** The edge marked it a HEAD, prefetch or link scanner on the click redirect (`edge.prefetch`). */
  prefetch?: boolean
}

/** IVT reason of an event that reaches the IVT step ('' when clean); `impressionTs` for joined clicks. */
export type IvtOracle = (e: ModelEvent, impressionTs: number | undefined) => string

/** Final verdict per record id: `billable` or the reason it is not billed. `events` in arrival (log) order. */
export function referenceVerdicts(events: readonly ModelEvent[], ivt: IvtOracle): Map<string, string> {
  const out = new Map<string, string>()
  const lastDelivery = new Map<string, number>()
  interface PerImpression {
    lastImpression?: number
    lastClick?: number
    head?: { ts: number; receivedAt: number }
    waiting: ModelEvent[]
  }
  const per = new Map<string, PerImpression>()
  const judgeClick = (c: ModelEvent, imp: { ts: number }): void => {
    if (withinJoinWindow(c.ts, imp.ts, c.channel)) out.set(c.id, ivt(c, imp.ts) || 'billable')
    else out.set(c.id, 'orphan_click')
  }
  for (const e of events) {
    const prev = lastDelivery.get(e.key)
    lastDelivery.set(e.key, e.receivedAt)
    if (seenWithinHorizon(e.receivedAt, prev)) {
      out.set(e.id, 'duplicate_delivery')
      continue
    }
    // An impression is its id within its publisher: another publisher's events with the id are others.
    const scope = `${e.publisherId}\u001f${e.impressionId}`
    let p = per.get(scope)
    if (!p) per.set(scope, (p = { waiting: [] }))
    if (e.type === 'impression') {
      const dup = seenWithinHorizon(e.receivedAt, p.lastImpression)
      p.lastImpression = e.receivedAt
      if (dup) {
        out.set(e.id, 'duplicate_impression')
        continue
      }
      p.head = { ts: e.ts, receivedAt: e.receivedAt }
      out.set(e.id, ivt(e, undefined) || 'billable')
      for (const c of p.waiting.splice(0)) {
        const inTime = e.receivedAt <= c.ts + joinWindowMs(c.channel) + JOIN_LATENESS_MS
        if (inTime) judgeClick(c, e)
        else out.set(c.id, 'orphan_click')
      }
    } else {
      // A prefetch or scanner's visit is no click of the impression: it neither takes its click nor
      // repeats it (IVT judges it: prefetch_click).
      const repeat = !e.prefetch && seenWithinHorizon(e.receivedAt, p.lastClick)
      if (!e.prefetch) p.lastClick = e.receivedAt
      if (repeat) {
        out.set(e.id, 'repeat_click')
        continue
      }
      if (p.head && seenWithinHorizon(e.receivedAt, p.lastImpression)) judgeClick(e, p.head)
      else p.waiting.push(e)
    }
  }
  for (const p of per.values()) for (const c of p.waiting) out.set(c.id, 'orphan_click')
  return out
}
