import { z } from 'zod'
import { eventIdSchema, idSchema } from './ids.js'
import { text } from './text.js'
import { MAX_BATCH_EVENTS } from './limits.js'

/** Event time: Unix epoch milliseconds or an ISO-8601 string; normalised to epoch ms. */
export const eventTimeSchema = z.union([
  z.number().int().nonnegative().max(8.64e15),
  text().max(40).refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 timestamp'),
]).transform((v) => (typeof v === 'number' ? v : Date.parse(v)))

export const channelSchema = z.enum(['web', 'app', 'ctv', 's2s'])
export type Channel = z.infer<typeof channelSchema>

/** A hex SHA-256 digest (64 hex digits, either case). */
export const sha256HexSchema = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be a hex SHA-256 digest')

/**
 * How `viewable` was measured: `mrc_50_1s` (IAB/MRC display: 50 % of pixels for one continuous
 * second; what the tag measures), `mrc_30_1s` (the MRC large-ad rule, 242,500 px² or more),
 * `mrc_50_2s` (MRC video), `client` (the SDK's own measurement; the default when `viewable` is
 * given without a method). An impression without `viewable` is unmeasured.
 */
export const viewMethodSchema = z.enum(['mrc_50_1s', 'mrc_30_1s', 'mrc_50_2s', 'client'])
export type ViewMethod = z.infer<typeof viewMethodSchema>

export const deviceSchema = z.enum(['desktop', 'mobile', 'tablet', 'ctv', 'other'])

const commonFields = {
  /** A ULID or a UUIDv7 made by the client; a retry sends the same id. */
  eventId: eventIdSchema,
  ts: eventTimeSchema,
  adId: idSchema,
  campaignId: idSchema,
  publisherId: idSchema,
  requestId: idSchema,
  impressionId: idSchema,
  userKey: text().max(128).optional(),
  channel: channelSchema.optional(),
  device: deviceSchema.optional(),
  /** ISO 3166-1 alpha-2 country, upper case. */
  geo: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code').optional(),
  placement: text().max(128).optional(),
  /** false means the user opted out: the event is counted but no user key or IP facts are kept. */
  consent: z.boolean().optional(),
  /** End-user agent and IP, sent by server-to-server callers; treated like observed request values. */
  ua: text().max(1024).optional(),
  ip: z.union([z.ipv4(), z.ipv6()]).optional(),
  /**
   * For senders that hash on their side: hex SHA-256 of the end user's IP and agent, sent instead of
   * `ip`/`ua`. Kept as given (lower-cased) and treated as opaque: a raw `ip` or `ua` in the same
   * event wins.
   */
  ipHash: sha256HexSchema.optional(),
  uaHash: sha256HexSchema.optional(),
}

export const impressionEventSchema = z.object({
  ...commonFields,
  viewable: z.boolean().optional(),
  viewMethod: viewMethodSchema.optional(),
}).strict()

export const clickEventSchema = z.object({
  ...commonFields,
  clickId: idSchema,
  /**
   * The signed click token of the ad (`v1.<keyId>.<payload>.<sig>`, schemas/src/token.ts). Required
   * when the click is sent with a public API key; checked against impressionId, campaignId and
   * publisherId. The edge strips it before the event goes to the log.
   */
  clickToken: z.string().max(4096).optional(),
}).strict()

export type ImpressionEvent = z.infer<typeof impressionEventSchema>
export type ClickEvent = z.infer<typeof clickEventSchema>
export type EventType = 'impression' | 'click'

/** The beacon body mixes both kinds; each event says which it is. */
export const typedEventSchema = z.discriminatedUnion('type', [
  impressionEventSchema.extend({ type: z.literal('impression') }),
  clickEventSchema.extend({ type: z.literal('click') }),
])

export { MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_BEACON_BYTES } from './limits.js'

/** The batch envelope only; each event is parsed on its own so one bad event never fails the rest. */
export const batchBodySchema = z.object({
  events: z.array(z.unknown()).min(1).max(MAX_BATCH_EVENTS),
})

export function schemaFor(type: EventType) {
  return type === 'impression' ? impressionEventSchema : clickEventSchema
}

/** Clock rules from the design: at most 5 minutes ahead of the edge clock, at most 24 hours old. */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000
export const MAX_EVENT_AGE_MS = 24 * 60 * 60_000

export function checkClock(ts: number, receivedAt: number): 'ok' | 'clock_skew_future' | 'clock_skew_past' {
  if (ts > receivedAt + MAX_FUTURE_SKEW_MS) return 'clock_skew_future'
  if (ts < receivedAt - MAX_EVENT_AGE_MS) return 'clock_skew_past'
  return 'ok'
}
