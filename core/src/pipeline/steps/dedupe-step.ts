import { ok, unbilled } from '../result.js'
import type { Step } from '../step.js'
import type { Decoded, Deduped } from '../types.js'
import type { PartitionStore } from '../../state/partition-store.js'
import { impressionKey, impressionScope, type ImpressionState } from '../../state/keys.js'
import { deliveryTimeOf } from '../../state/delivery-index.js'
import { seenWithinHorizon, STATE_TTL_MS } from '../../rules/rules.js'

export interface DedupeDeps {
  store: PartitionStore
  /** How long keys are remembered after the edge received the event: the dedupe horizon plus the log-delay margin. @default 25 h */
  ttlMs?: number
}

export const DEFAULT_DEDUPE_TTL_MS = STATE_TTL_MS

/**
 * Exact dedupe, partition-local (records are keyed by impressionId, so every key of an event family
 * lives in one partition).
 *
 * - Delivery: the edge idempotency key. A later record with the same key is `duplicate_delivery`
 *   when the previous record with it reached the edge at most the dedupe horizon before it.
 * - Business: an impression is `duplicate_impression` when the previous impression of its
 *   impressionId from the same publisher (`impressionScope`: another publisher's events never touch
 *   it) reached the edge at most the dedupe horizon before it (rules/rules.ts); a click is
 *   `repeat_click` likewise. The horizon slides with each sighting, whatever UTC day it falls on:
 *   the billing job applies the same rule to raw rows (billing/final-join.ts).
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
    const deliveries = store.deliveries
    // The bucket follows the event id's time, a function of the delivery key's input (not `ts`).
    const idTime = deliveryTimeOf(envelope.event.eventId)
    const first = deliveries.firstSeen(envelope.key, idTime, envelope.receivedAt)
    const expiresAt = envelope.receivedAt + ttlMs
    if (first !== undefined && first !== offset) {
      // The horizon slides with each sighting, as for impressions and clicks (rules/rules.ts).
      deliveries.resighted(envelope.key, idTime, envelope.receivedAt, expiresAt)
      return unbilled(annotate(input, first), 'duplicate_delivery')
    }
    if (first === undefined) deliveries.add(envelope.key, idTime, offset, expiresAt, envelope.receivedAt)
    // The state expires with the hour of its `ex` (state/impression-index.ts).
    const ik = impressionKey(impressionScope(envelope.event.publisherId, envelope.event.impressionId))
    const state = store.get<ImpressionState>(ik)
    const r = envelope.receivedAt
    // State written before sightings carried their receive time counts as within the horizon.
    const ex = Math.max(state?.ex ?? 0, expiresAt)
    if (envelope.type === 'impression') {
      if (state?.io !== undefined && state.io !== offset && seenWithinHorizon(r, state.il ?? r)) {
        store.put(ik, { ...state, il: r, ex })
        return unbilled(annotate(input, offset), 'duplicate_impression')
      }
      if (state === undefined) store.put(ik, { io: offset, its: envelope.event.ts, ich: envelope.event.channel ?? 'web', il: r, ex })
      else if (state.io !== offset) store.put(ik, { ...state, io: offset, its: envelope.event.ts, ich: envelope.event.channel ?? 'web', il: r, ex })
    } else if (envelope.edge.prefetch) {
      // A HEAD, prefetch/prerender or link scanner on the click redirect is no person's click: it
      // neither takes the impression's click nor repeats it (IVT keeps it as prefetch_click).
      // Otherwise a mail scanner opening the link first would make the person's click a repeat_click.
    } else {
      if (state?.co !== undefined && state.co !== offset && seenWithinHorizon(r, state.cl ?? r)) {
        store.put(ik, { ...state, cl: r, ex })
        return unbilled(annotate(input, offset), 'repeat_click')
      }
      if (state?.co !== offset) store.put(ik, { ...state, co: offset, cl: r, ex })
    }
    return ok(annotate(input, offset))
  }
}
