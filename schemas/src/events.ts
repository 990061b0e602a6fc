import { z } from 'zod'
import { idSchema, ulidSchema } from './ids.js'
import { MAX_BATCH_EVENTS } from './limits.js'

/** Event time: Unix epoch milliseconds or an ISO-8601 string; normalised to epoch ms. */
export const eventTimeSchema = z.union([
  z.number().int().nonnegative().max(8.64e15),
  z.string().max(40).refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 timestamp'),
]).transform((v) => (typeof v === 'number' ? v : Date.parse(v)))

export const channelSchema = z.enum(['web', 'app', 'ctv', 's2s'])
export type Channel = z.infer<typeof channelSchema>

export const deviceSchema = z.enum(['desktop', 'mobile', 'tablet', 'ctv', 'other'])

const commonFields = {
  eventId: ulidSchema,
  ts: eventTimeSchema,
  adId: idSchema,
  campaignId: idSchema,
  publisherId: idSchema,
  requestId: idSchema,
  impressionId: idSchema,
  userKey: z.string().max(128).optional(),
  channel: channelSchema.optional(),
  device: deviceSchema.optional(),
  /** ISO 3166-1 alpha-2 country, upper case. */
  geo: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code').optional(),
  placement: z.string().max(128).optional(),
  /** false means the user opted out: the event is counted but no user key or IP facts are kept. */
  consent: z.boolean().optional(),
  /** End-user agent and IP, sent by server-to-server callers; treated like observed request values. */
  ua: z.string().max(1024).optional(),
  ip: z.union([z.ipv4(), z.ipv6()]).optional(),
}

export const impressionEventSchema = z.object({
  ...commonFields,
  viewable: z.boolean().optional(),
}).strict()

export const clickEventSchema = z.object({
  ...commonFields,
  clickId: idSchema,
}).strict()

export type ImpressionEvent = z.infer<typeof impressionEventSchema>
export type ClickEvent = z.infer<typeof clickEventSchema>
export type EventType = 'impression' | 'click'

/** The beacon body mixes both kinds; each event says which it is. */
export const typedEventSchema = z.discriminatedUnion('type', [
  impressionEventSchema.extend({ type: z.literal('impression') }),
  clickEventSchema.extend({ type: z.literal('click') }),
])

export { MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from './limits.js'

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
