import type { Channel, Envelope } from '@adc/schemas'
import { ok, unbilled, type StepResult } from '../result.js'
import type { Step } from '../step.js'
import type { Deduped, Joined, RecordRef } from '../types.js'
import type { PartitionStore } from '../../state/partition-store.js'
import type { BurstCounts } from '../../state/burst-counters.js'
import { impressionKey, impressionScope, joinDeadlineKey, pad, waitingKey, WAITING_COUNT_KEY, type ImpressionState } from '../../state/keys.js'
import { advanceWatermark, watermark } from '../../state/expiry.js'
import {
  CLICK_BEFORE_IMPRESSION_SKEW_MS,
  JOIN_LATENESS_MS,
  JOIN_WINDOWS_MS,
  LOG_DELAY_MARGIN_MS,
  joinWindowMs,
  lateImpressionJoins,
  seenWithinHorizon,
  withinJoinWindow,
} from '../../rules/rules.js'

export { JOIN_WINDOWS_MS }

export interface JoinDeps {
  store: PartitionStore
  windowsMs?: Readonly<Record<Channel, number>>
  /** How long after its window an orphan click can still be joined by a late impression. @default 24 h */
  latenessMs?: number
  /** A click may carry a ts slightly before its impression's (two clocks). @default 60 s */
  clockSkewMs?: number
}

/** A click kept in the store until its impression arrives or the watermark passes its window. */
interface WaitingClick {
  ref: RecordRef
  appendedAt: number
  envelope: Envelope
  state: 'waiting' | 'orphaned'
  /** Its `join_pending` row was written (clicks queued before that row existed have none). */
  written?: boolean
  /** Its burst counts when it arrived (clicks queued before they were kept have none: IVT counts them when released). */
  bursts?: BurstCounts
}

export interface JoinStage<T extends Deduped> {
  step: Step<T, T & Joined>
  /**
   * Clicks an impression just released (joined now, or joined late as a correction of an earlier
   * orphan, or orphaned because they fell outside its window). Drained after each record.
   */
  drainReleased(): Array<StepResult<Joined>>
  /** Clicks whose window the watermark passed: provisional `orphan_click` results. Called per batch. */
  expire(limit?: number): Array<StepResult<Joined>>
  /** Clicks waiting for their impression now (accepted, not yet written as a verdict). */
  waiting(): number
}

/**
 * Joins clicks to impressions within the channel window, with a per-partition watermark (max edge
 * `receivedAt`, replay-stable). A click whose impression is not there yet waits in LMDB
 * and is written at once as `join_pending` (kept, not billed); when the watermark passes its window it becomes a provisional
 * `orphan_click`; if the impression arrives within the lateness after that, the click is re-emitted
 * with `correction: true`, and the sinks write a signed correction (-1 orphan, +1 click). Resolving a
 * pending click likewise retracts its `join_pending` row (`retractPending`).
 */
/** The join of an impression or an unjoined click: one shared, frozen value (nobody writes it). */
const JOIN_NONE: Joined['join'] = Object.freeze({ status: 'none' as const })

const NOTHING_RELEASED: Array<StepResult<Joined>> = Object.freeze([]) as unknown as Array<StepResult<Joined>>

function withJoin<T extends Deduped>(input: T, join: Joined['join']): T & Joined {
  const out = input as T & Joined
  out.join = join
  return out
}

export function createJoinStage<T extends Deduped>(deps: JoinDeps): JoinStage<T> {
  const { store, windowsMs = JOIN_WINDOWS_MS, latenessMs = JOIN_LATENESS_MS, clockSkewMs = CLICK_BEFORE_IMPRESSION_SKEW_MS } = deps
  const released: Array<StepResult<Joined>> = []
  const windowOf = (env: Envelope): number => joinWindowMs(env.event.channel, windowsMs)
  const within = (impressionTs: number, click: Envelope): boolean =>
    clockSkewMs === CLICK_BEFORE_IMPRESSION_SKEW_MS
      ? withinJoinWindow(click.event.ts, impressionTs, click.event.channel, windowsMs)
      : click.event.ts - impressionTs >= -clockSkewMs && click.event.ts - impressionTs <= windowOf(click)
  // Kept past the lateness by the log-delay margin, so a late impression that trails the watermark
  // still finds the click; whether it joins is the rule's call (lateImpressionJoins), not the sweep's.
  const keepOrphanMs = latenessMs + LOG_DELAY_MARGIN_MS
  // Clicks accepted but not yet written anywhere but the store (state, so a replay counts the same).
  const addWaiting = (d: number): void => store.put(WAITING_COUNT_KEY, (store.get<number>(WAITING_COUNT_KEY) ?? 0) + d)
  const arrive = (env: Envelope): BurstCounts => store.bursts.arrive(env.client.ipPrefix, env.event.userKey, env.receivedAt)
  const rebuild = (w: WaitingClick): Deduped => ({ ref: w.ref, appendedAt: w.appendedAt, payload: '', envelope: w.envelope, firstSeenOffset: w.ref.offset })

  function joinStep(input: T): StepResult<T & Joined> {
    const env = input.envelope
    advanceWatermark(store, env.receivedAt)
    const id = impressionScope(env.event.publisherId, env.event.impressionId)
    if (env.type === 'impression') {
      const wk = waitingKey(id)
      const waiting = store.get<WaitingClick[]>(wk)
      if (waiting) {
        for (const w of waiting) {
          const ok_ = within(env.event.ts, w.envelope) && lateImpressionJoins(w.envelope.event.ts, w.envelope.event.channel, env.receivedAt, windowsMs, latenessMs)
          const click = rebuild(w)
          const bursts = w.bursts ? { bursts: w.bursts } : {}
          if (w.state === 'waiting') {
            const retract = w.written ? { retractPending: true } : {}
            released.push(ok_ ? ok({ ...click, join: { status: 'joined', impressionTs: env.event.ts, ...retract, ...bursts } }) : unbilled({ ...click, join: { status: 'none', ...retract } }, 'orphan_click'))
            addWaiting(-1)
          } else if (ok_) {
            released.push(ok({ ...click, join: { status: 'joined', impressionTs: env.event.ts, correction: true, ...bursts } }))
          }
        }
        store.remove(wk)
      }
      return ok(withJoin(input, JOIN_NONE))
    }
    const imp = store.get<ImpressionState>(impressionKey(id))
    // The impression counts if one was seen within the dedupe horizon before this click (rules/rules.ts).
    if (imp?.io !== undefined && imp.its !== undefined && seenWithinHorizon(env.receivedAt, imp.il ?? env.receivedAt)) {
      if (within(imp.its, env)) return ok(withJoin(input, { status: 'joined', impressionTs: imp.its }))
      // Every click past dedupe counts toward the bursts when it arrives, joined or not; IVT counts
      // the joined ones (ivt-step.ts), this step the others.
      arrive(env)
      return unbilled(withJoin(input, JOIN_NONE), 'orphan_click')
    }
    const wk = waitingKey(id)
    const list = store.get<WaitingClick[]>(wk) ?? []
    store.put(wk, [...list, { ref: input.ref, appendedAt: input.appendedAt, envelope: env, state: 'waiting', written: true, bursts: arrive(env) }])
    addWaiting(1)
    store.put(joinDeadlineKey(env.event.ts + windowOf(env), id), null)
    return unbilled(withJoin(input, JOIN_NONE), 'join_pending')
  }

  return {
    step: joinStep,
    waiting: () => store.get<number>(WAITING_COUNT_KEY) ?? 0,
    drainReleased() {
      // Most records release nothing: answer without allocating a fresh empty array each time.
      return released.length === 0 ? NOTHING_RELEASED : released.splice(0, released.length)
    },
    expire(limit = 20_000) {
      const wm = watermark(store)
      const out: Array<StepResult<Joined>> = []
      for (const [k] of store.range<null>('q:', `q:${pad(wm + 1)}`, limit)) {
        store.remove(k)
        const id = k.slice(2 + 15 + 1)
        const wk = waitingKey(id)
        const list = store.get<WaitingClick[]>(wk)
        if (!list) continue
        const keep: WaitingClick[] = []
        for (const w of list) {
          const due = w.envelope.event.ts + windowOf(w.envelope)
          if (w.state === 'waiting' && due <= wm) {
            out.push(unbilled({ ...rebuild(w), join: { status: 'none', ...(w.written ? { retractPending: true } : {}) } }, 'orphan_click'))
            addWaiting(-1)
            keep.push({ ...w, state: 'orphaned' })
            store.put(joinDeadlineKey(due + keepOrphanMs, id), null)
          } else if (!(w.state === 'orphaned' && due + keepOrphanMs <= wm)) {
            keep.push(w)
          }
        }
        if (keep.length > 0) store.put(wk, keep)
        else store.remove(wk)
      }
      return out
    },
  }
}
