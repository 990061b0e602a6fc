import { ok, unbilled } from '../result.js'
import type { Step } from '../step.js'
import type { Decoded, Deduped } from '../types.js'
import type { PartitionStore } from '../../state/partition-store.js'
import { deliveryKey, impressionKey, type ImpressionState } from '../../state/keys.js'
import { scheduleExpiry } from '../../state/expiry.js'

export interface DedupeDeps {
  store: PartitionStore
  /** How long keys are remembered after the edge received the event: 24 h plus lateness. @default 25 h */
  ttlMs?: number
}

export const DEFAULT_DEDUPE_TTL_MS = 25 * 60 * 60_000

/**
 * Exact dedupe, partition-local (records are keyed by impressionId, so every key of an event family
 * lives in one partition).
 *
 * - Delivery: the edge idempotency key. A later record with the same key is `duplicate_delivery`.
 * - Business: a second impression for an impressionId is `duplicate_impression`; a second click on
 *   one impression is `repeat_click`.
 *
 * Each key stores the offset where it was first seen. A record whose own offset is stored is the
 * first sighting itself, re-read after a crash or a reprocess: not a duplicate. So replaying any
 * offset range gives every record the verdict it had the first time.
 */
/** Adds `firstSeenOffset` in place (no temporary object per event). */
function annotate<T extends Decoded>(input: T, firstSeenOffset: number): T & Deduped {
  const out = input as T & Deduped
  out.firstSeenOffset = firstSeenOffset
  return out
}

export function createDedupeStep<T extends Decoded>({ store, ttlMs = DEFAULT_DEDUPE_TTL_MS }: DedupeDeps): Step<T, T & Deduped> {
  return function dedupeStep(input) {
    const { envelope, ref } = input
    const offset = ref.offset
    const dk = deliveryKey(envelope.key)
    const first = store.get<number>(dk)
    if (first !== undefined && first !== offset) return unbilled(annotate(input, first), 'duplicate_delivery')
    const expiresAt = envelope.receivedAt + ttlMs
    if (first === undefined) {
      store.put(dk, offset)
      scheduleExpiry(store, expiresAt, dk)
    }
    const ik = impressionKey(envelope.event.impressionId)
    const state = store.get<ImpressionState>(ik)
    if (envelope.type === 'impression') {
      if (state?.io !== undefined && state.io !== offset) return unbilled(annotate(input, offset), 'duplicate_impression')
      if (state?.io === undefined) store.put(ik, { ...state, io: offset, its: envelope.event.ts, ich: envelope.event.channel ?? 'web' })
    } else {
      if (state?.co !== undefined && state.co !== offset) return unbilled(annotate(input, offset), 'repeat_click')
      if (state?.co === undefined) store.put(ik, { ...state, co: offset })
    }
    if (state === undefined) scheduleExpiry(store, expiresAt, ik)
    return ok(annotate(input, offset))
  }
}
