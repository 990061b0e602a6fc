import type { Channel } from '@adc/schemas'

/**
 * The attribution and dedupe rules, defined once. The processor (pipeline/steps/dedupe-step.ts,
 * join-step.ts) applies them event by event; the billing job (billing/final-join.ts) applies them to
 * a day of raw rows in SQL generated from these constants; rules/reference-model.ts states them in
 * plain TypeScript for the property tests that hold both engines to the same verdicts.
 *
 * "Arrival order" is log order: every event of one impressionId sits in one partition (the log key),
 * so (partition, offset) orders them exactly as the processor saw them.
 */

/**
 * How far an edge's clock (an envelope's `receivedAt`) may run ahead of the log's (the record's
 * append time). No edge gives more: a record that claims it is refused as a bad envelope (the
 * decode step), since its `receivedAt` would move its partition's watermark, and with it every
 * expiry of the partition's state, as far as it says.
 */
export const MAX_EDGE_CLOCK_AHEAD_MS = 60 * 60_000

/** Click-to-impression windows per channel: web 30 min, app 24 h; CTV and S2S like app. */
export const JOIN_WINDOWS_MS: Readonly<Record<Channel, number>> = Object.freeze({
  web: 30 * 60_000,
  app: 24 * 60 * 60_000,
  ctv: 24 * 60 * 60_000,
  s2s: 24 * 60 * 60_000,
})

/** A click may carry a ts this much before its impression's (two clocks); earlier is not a click on it. */
export const CLICK_BEFORE_IMPRESSION_SKEW_MS = 60_000

/**
 * How far back a sighting makes a later one a duplicate, by edge receive time: an impression (or
 * click) of an impressionId is a duplicate (repeat) when the previous one of that impressionId
 * arrived at most this long before it; a delivery is a duplicate when its key did. The edge refuses
 * events more than 24 h old, so a retry never comes later than this.
 */
export const DEDUPE_HORIZON_MS = 24 * 60 * 60_000

/**
 * An orphaned click is joined by its impression if the impression reaches the edge at most this long
 * after the click's window ended; later, the click stays an orphan.
 */
export const JOIN_LATENESS_MS = 24 * 60 * 60_000

/**
 * How far a record may trail its partition's watermark in the log (spool retries). The processor
 * keeps state this much longer than the rules need, so its sweeps never forget a key a rule still
 * reads. A record later than this could be judged differently by the stream than by the rules.
 */
export const LOG_DELAY_MARGIN_MS = 60 * 60_000

/**
 * How long the processor keeps dedupe and join state after the last sighting: horizon + margin.
 * A stored delivery key's expiry is implied by it (state/delivery-index.ts, 12-byte values): a build
 * that changes it changes those keys' expiry too, so it bumps STATE_FORMAT.
 */
export const STATE_TTL_MS = DEDUPE_HORIZON_MS + LOG_DELAY_MARGIN_MS

/** The edge accepts events whose ts is at most this old (`clock_skew` otherwise). */
export const EDGE_MAX_EVENT_AGE_MS = 24 * 60 * 60_000

/**
 * A UTC day is complete once the watermark passed its end by this much: every event of the day has
 * reached the edge (at most 24 h late) and the log (margin), and every click's window has ended.
 */
export const DAY_CLOSE_HORIZON_MS = Math.max(EDGE_MAX_EVENT_AGE_MS, ...Object.values(JOIN_WINDOWS_MS)) + LOG_DELAY_MARGIN_MS

export function channelOf(channel: string | undefined): Channel {
  return channel === 'app' || channel === 'ctv' || channel === 's2s' ? channel : 'web'
}

export function joinWindowMs(channel: string | undefined, windows: Readonly<Record<Channel, number>> = JOIN_WINDOWS_MS): number {
  return windows[channelOf(channel)]
}

/** A click at `clickTs` belongs to an impression at `impressionTs`: after it (within the skew) and within the channel window. */
export function withinJoinWindow(clickTs: number, impressionTs: number, channel: string | undefined, windows = JOIN_WINDOWS_MS): boolean {
  const d = clickTs - impressionTs
  return d >= -CLICK_BEFORE_IMPRESSION_SKEW_MS && d <= joinWindowMs(channel, windows)
}

/** The previous sighting (edge receive time) makes this one a duplicate. */
export function seenWithinHorizon(receivedAt: number, previousReceivedAt: number | undefined): boolean {
  return previousReceivedAt !== undefined && receivedAt - previousReceivedAt <= DEDUPE_HORIZON_MS
}

/** An impression arriving after its click still joins it if it reached the edge within the lateness. */
export function lateImpressionJoins(clickTs: number, channel: string | undefined, impressionReceivedAt: number, windows = JOIN_WINDOWS_MS, latenessMs = JOIN_LATENESS_MS): boolean {
  return impressionReceivedAt <= clickTs + joinWindowMs(channel, windows) + latenessMs
}

/**
 * A versioned set of attribution windows. The stream runs CURRENT_ATTRIBUTION; a reprocess can
 * rebuild a day with another version (the final join is generated from the windows it is given) into
 * a candidate snapshot, promoted only on request. Never change a released version; add one.
 */
export interface AttributionRules {
  version: string
  description: string
  windowsMs: Readonly<Record<Channel, number>>
}

export const CURRENT_ATTRIBUTION: AttributionRules = {
  version: 'attr-2026.11.1',
  description: 'web 30 min, app/ctv/s2s 24 h',
  windowsMs: JOIN_WINDOWS_MS,
}

export const ATTRIBUTION_RULES: ReadonlyMap<string, AttributionRules> = new Map(
  [
    CURRENT_ATTRIBUTION,
    {
      version: 'attr-2026.12.1',
      description: 'web 60 min, app/ctv/s2s 24 h',
      windowsMs: Object.freeze({ web: 60 * 60_000, app: 24 * 60 * 60_000, ctv: 24 * 60 * 60_000, s2s: 24 * 60 * 60_000 }),
    },
  ].map((r) => [r.version, r]),
)
