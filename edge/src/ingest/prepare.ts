/**
 * The first half of ingest: validates each event on its own (schema, publisher, booked campaign,
 * what the credential may send, clock, a click's signed token) and computes its idempotency key
 * and dedupe shard. Nothing leaves the isolate here; `commit` (./commit.ts) does the I/O.
 */
import { checkClock, schemaFor, type ClickEvent, type EventType, type ImpressionEvent, type ReasonCode, type PublisherConfig } from '@adc/schemas'
import { dedupeShardOf } from '../dedupe/shard.js'
import { dedupeKeyOf, timeBucketOfMs } from '../dedupe/dedupe-key.js'
import type { EdgeFacts, EnvelopeSource } from './envelope.js'
import type { ObservedClient } from '../privacy/privacy.js'
import type { Settings } from '../settings.js'
import type { Credential } from '../context.js'
import type { TenantIndex } from '../tenants/tenants.js'
import { checkToken } from '../tokens/token-check.js'
import { idempotencyKeyOf } from './idempotency.js'

/** One event's answer. `failed` only appears in a 503 answer: the event is not accepted. */
export type EventStatus = 'accepted' | 'duplicate' | 'rejected' | 'queued' | 'failed'

export interface EventResult {
  index: number
  eventId?: string
  status: EventStatus
  code?: ReasonCode
  httpStatus?: number
  message?: string
}

export interface IncomingItem {
  /** null: the event did not say a known type (beacon bodies carry `type` per event). */
  type: EventType | null
  raw: unknown
  /**
   * The time its dedupe key is filed under, when the event id carries none (a pixel's id is derived
   * from its token): the shard keeps the key 24 h after this time. @default the event id's time
   */
  dedupeTimeMs?: number
}

export interface IngestContext {
  publisher: PublisherConfig
  /** What the request's credential may send (see `Credential`). */
  credential: Credential
  /** Booked campaigns and token keys (for a click's `clickToken`). */
  tenants: TenantIndex
  source: EnvelopeSource
  observed: ObservedClient
  edge: EdgeFacts
  prefetch?: boolean
  receivedAt: number
}

/** An event that passed `prepare`, with what `commit` needs to dedupe and forward it. */
export interface Valid {
  index: number
  type: EventType
  event: ImpressionEvent | ClickEvent
  /** The idempotency key (in the envelope; core's dedupe key). */
  key: string
  /** What the DedupeShard stores: the key behind its event id's time bucket (`dedupeKeyOf`). */
  dedupeKey: string
  shard: number
}

export interface Prepared {
  ctx: IngestContext
  results: EventResult[]
  valid: Valid[]
}

function firstIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid event'
  const path = issue.path.map(String).join('.')
  return (path ? `${path}: ${issue.message}` : issue.message).slice(0, 300)
}

function eventIdOf(raw: unknown): string | undefined {
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const id = (raw as { eventId?: unknown }).eventId
    if (typeof id === 'string' && id.length <= 64) return id
  }
  return undefined
}

/**
 * Validates each event on its own (schema, publisher, booked campaign, what the credential may
 * send, clock) and computes its idempotency key and dedupe shard. A bad event gets its own
 * `rejected` result; it never affects the others.
 */
export async function prepare(items: IncomingItem[], ctx: IngestContext, settings: Pick<Settings, 'dedupeShards'>): Promise<Prepared> {
  const results: EventResult[] = []
  const valid: Valid[] = []
  for (let index = 0; index < items.length; index++) {
    const { type, raw, dedupeTimeMs } = items[index]!
    const eventId = eventIdOf(raw)
    const base: EventResult = eventId === undefined ? { index, status: 'rejected' } : { index, eventId, status: 'rejected' }
    if (type === null) {
      results.push({ ...base, code: 'invalid_event', httpStatus: 400, message: 'type: must be "impression" or "click"' })
      continue
    }
    let parsed
    try {
      parsed = schemaFor(type).safeParse(raw)
    } catch (err) {
      parsed = { success: false as const, error: { issues: [{ path: [], message: err instanceof Error ? err.message : 'unparseable' }] } }
    }
    if (!parsed.success) {
      results.push({ ...base, code: 'invalid_event', httpStatus: 400, message: firstIssue(parsed.error) })
      continue
    }
    let event: ImpressionEvent | ClickEvent = parsed.data
    if (event.publisherId !== ctx.publisher.id) {
      results.push({ ...base, code: 'publisher_mismatch', httpStatus: 403, message: `publisherId ${event.publisherId} is not the authenticated publisher` })
      continue
    }
    if (!ctx.tenants.isBooked(event.campaignId, event.publisherId)) {
      // One answer whether or not the campaign exists for another publisher: the public key is in
      // every page, so two answers would tell anyone which of other tenants' campaign ids exist.
      results.push({ ...base, code: 'unknown_campaign', httpStatus: 422, message: `campaign ${event.campaignId} is not booked with publisher ${event.publisherId}` })
      continue
    }
    if (type === 'click') {
      const refused = await clickTokenRefusal(event as ClickEvent, ctx)
      if (refused) {
        results.push({ ...base, ...refused })
        continue
      }
      // The token has done its job; it does not travel to the log.
      const { clickToken: _token, ...rest } = event as ClickEvent
      event = rest
    }
    const clock = checkClock(event.ts, ctx.receivedAt)
    if (clock !== 'ok') {
      results.push({
        ...base, code: 'clock_skew', httpStatus: 422,
        message: clock === 'clock_skew_future' ? 'ts is more than 5 minutes ahead of the edge clock' : 'ts is more than 24 hours old',
      })
      continue
    }
    const key = idempotencyKeyOf(event.publisherId, type, event.eventId)
    // A filing time given by the route replaces the event id's.
    const dedupeKey = dedupeTimeMs === undefined ? dedupeKeyOf(event.eventId, key) : timeBucketOfMs(dedupeTimeMs) + key
    results.push({ index, eventId: event.eventId, status: 'queued' })
    valid.push({ index, type, event, key, dedupeKey, shard: dedupeShardOf(event.publisherId, event.eventId, settings.dedupeShards) })
  }
  return { ctx, results, valid }
}

/**
 * A click from a public key or an app-scope request signature (the key sits in page HTML, the
 * secret inside every copy of the app, so anyone can send with it) is billable
 * only with the ad's signed click token, which only the ad server can mint: a valid token by a
 * token signing key, naming a landing URL (a pixel token names none), for this impression,
 * campaign and publisher. A token sent with any other
 * credential is checked the same way. Answers why the click is refused, or undefined.
 */
/** The credentials whose clicks need a clickToken, and how the refusal names them. */
const TOKEN_REQUIRED: Partial<Record<Credential, string>> = { public_key: 'sent with a public key', app_signature: 'signed with an app-scope request key' }

async function clickTokenRefusal(event: ClickEvent, ctx: IngestContext): Promise<Pick<EventResult, 'code' | 'httpStatus' | 'message'> | undefined> {
  if (event.clickToken === undefined) {
    const sentWith = TOKEN_REQUIRED[ctx.credential]
    if (sentWith === undefined) return undefined
    return { code: 'click_token_required', httpStatus: 403, message: `a click ${sentWith} needs its signed clickToken (from the ad server); or send it with a server key or a server-scope request signature` }
  }
  const check = await checkToken(event.clickToken, ctx.tenants, Math.floor(ctx.receivedAt / 1000))
  if (!check.ok) {
    const code = check.code === 'unknown_campaign' ? 'invalid_token' : check.code
    return { code, httpStatus: code === 'token_expired' ? 410 : 400, message: `clickToken: ${check.message}` }
  }
  const p = check.payload
  // A pixel token (no landing URL) sits in the page's img src and proves that an impression was
  // served, not that its ad was made clickable: only a click token, which names where the click
  // goes (what the redirect requires too), vouches for a click.
  if (p.url === undefined) {
    return { code: 'invalid_token', httpStatus: 400, message: 'clickToken is a pixel token (no landing URL); send the click token the ad server minted for the click' }
  }
  if (p.impressionId !== event.impressionId || p.campaignId !== event.campaignId || p.publisherId !== event.publisherId || check.publisher.id !== ctx.publisher.id) {
    return { code: 'invalid_token', httpStatus: 400, message: 'clickToken was issued for another impression, campaign or publisher' }
  }
  return undefined
}
