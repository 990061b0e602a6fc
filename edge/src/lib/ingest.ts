import {
  checkClock, EDGE_STATS_TOPIC, EVENTS_TOPIC, idempotencyKey, partitionFor, schemaFor,
  type ClickEvent, type EventType, type ImpressionEvent, type ReasonCode,
} from '@adc/schemas'
import type { Env } from '../env.js'
import { dedupeKeyOf, timeBucketOf } from './dedupe-key.js'
import { buildEnvelope, type EdgeFacts, type EnvelopeSource } from './envelope.js'
import { forward, proxyOptions, type ProxyRecord } from './forwarder.js'
import type { ObservedClient } from './privacy.js'
import type { Settings } from './settings.js'
import { StatsBatcher } from './stats-batcher.js'
import type { Credential } from './context.js'
import type { PublisherConfig, TenantIndex } from './tenants.js'
import { checkToken } from './token-check.js'

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

interface Valid {
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
 * The DedupeShard that judges an event: Kafka's murmur2 partitioner over the publisher and the event
 * id's creation time to 1.024 s, written as a ULID's first 8 characters (for a ULID, exactly those
 * characters; for a UUIDv7, its 48-bit time encoded the same way, so both forms made in one second
 * meet on one shard). Both are inputs of the idempotency key, so a retry reaches the same shard
 * whatever batch it travels in; and the events a client batches together were made within a second
 * or two, so a batch usually costs one shard RPC, not one per shard (hashing the impressionId spread
 * every batch over all N shards). A publisher's load moves to another shard every second, and
 * publishers spread over the shards.
 */
export function dedupeShardOf(publisherId: string, eventId: string, shards: number): number {
  return partitionFor(`${publisherId}\u001f${timeBucketOf(eventId)}`, shards)
}

/**
 * Validates each event on its own (schema, publisher, booked campaign, what the credential may
 * send, clock) and computes its idempotency key and dedupe shard. A bad event gets its own
 * `rejected` result; it never affects the others.
 */
export async function prepare(items: IncomingItem[], ctx: IngestContext, settings: Pick<Settings, 'dedupeShards'>): Promise<Prepared> {
  const results: EventResult[] = []
  const valid: Valid[] = []
  // Digests start as each event passes and are awaited together at the end, not one at a time.
  const keys: Promise<string>[] = []
  for (let index = 0; index < items.length; index++) {
    const { type, raw } = items[index]!
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
    if (!ctx.tenants.isBooked(event.campaignId)) {
      results.push({ ...base, code: 'unknown_campaign', httpStatus: 422, message: `campaign ${event.campaignId} is not booked` })
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
    keys.push(idempotencyKey(event.publisherId, type, event.eventId))
    results.push({ index, eventId: event.eventId, status: 'queued' })
    valid.push({ index, type, event, key: '', dedupeKey: '', shard: dedupeShardOf(event.publisherId, event.eventId, settings.dedupeShards) })
  }
  const digests = await Promise.all(keys)
  valid.forEach((v, i) => {
    v.key = digests[i]!
    v.dedupeKey = dedupeKeyOf(v.event.eventId, v.key)
  })
  return { ctx, results, valid }
}

/**
 * A click from a public key (its key sits in page HTML, so anyone can send with it) is billable
 * only with the ad's signed click token, which only the ad server can mint: a valid token by a
 * token signing key, for this impression, campaign and publisher. A token sent with any other
 * credential is checked the same way. Answers why the click is refused, or undefined.
 */
async function clickTokenRefusal(event: ClickEvent, ctx: IngestContext): Promise<Pick<EventResult, 'code' | 'httpStatus' | 'message'> | undefined> {
  if (event.clickToken === undefined) {
    if (ctx.credential !== 'public_key') return undefined
    return { code: 'click_token_required', httpStatus: 403, message: 'a click sent with a public key needs its signed clickToken; or send it with a server key or a request signature' }
  }
  const check = await checkToken(event.clickToken, ctx.tenants, Math.floor(ctx.receivedAt / 1000))
  if (!check.ok) {
    const code = check.code === 'unknown_campaign' ? 'invalid_token' : check.code
    return { code, httpStatus: code === 'token_expired' ? 410 : 400, message: `clickToken: ${check.message}` }
  }
  const p = check.payload
  if (p.impressionId !== event.impressionId || p.campaignId !== event.campaignId || p.publisherId !== event.publisherId || check.publisher.id !== ctx.publisher.id) {
    return { code: 'invalid_token', httpStatus: 400, message: 'clickToken was issued for another impression, campaign or publisher' }
  }
  return undefined
}

export interface CommitOutcome {
  results: EventResult[]
  counts: { received: number; accepted: number; duplicate: number; rejected: number }
  /** false when some events were neither delivered nor spooled (the answer is 503). */
  durable: boolean
  delivered: number
  spooled: number
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    }),
  ]).finally(() => {
    if (timer !== undefined) clearTimeout(timer)
  })
}

export function spoolFor(env: Env, publisherId: string) {
  return env.SPOOL.get(env.SPOOL.idFromName(`pub:${publisherId}`))
}

export function shardFor(env: Env, shard: number) {
  return env.DEDUPE_SHARD.get(env.DEDUPE_SHARD.idFromName(`shard:${shard}`))
}

export interface CommitOptions {
  /**
   * Where the confirm RPCs go once the events are durable: given `ctx.waitUntil`, they run after
   * the answer instead of before it. Safe because an unconfirmed key is judged new: a
   * retry that arrives before its confirm lands is forwarded again and core's exact dedupe drops
   * it, and a 409 still only ever answers an event that is stored. @default awaited inline
   */
  later?: (work: Promise<void>) => void
}

/**
 * Dedupes (one check RPC per shard touched), forwards the new events as one REST proxy call, spools
 * whatever the proxy did not take, reports the durable ones accepted and confirms their keys (one
 * RPC per shard, inline or in `opts.later`). When neither proxy nor Spool works, the events are
 * reported `failed` and their keys stay unconfirmed, so the client's retry is not called a duplicate.
 */
export async function commit(prepared: Prepared, env: Env, settings: Settings, opts: CommitOptions = {}): Promise<CommitOutcome> {
  const { ctx, results, valid } = prepared
  const byShard = new Map<number, Valid[]>()
  for (const v of valid) {
    const list = byShard.get(v.shard)
    if (list) list.push(v)
    else byShard.set(v.shard, [v])
  }
  const verdict = new Map<Valid, 'new' | 'duplicate' | 'skipped'>()
  await Promise.all([...byShard].map(async ([shard, list]) => {
    try {
      const answers = await withTimeout(shardFor(env, shard).check(list.map((v) => v.dedupeKey)), settings.dedupeTimeoutMs)
      list.forEach((v, i) => verdict.set(v, answers[i] === 'duplicate' ? 'duplicate' : 'new'))
    } catch {
      // A slow or failing shard must not block the events: core's exact dedupe catches repeats.
      for (const v of list) verdict.set(v, 'skipped')
    }
  }))

  const toSend: { v: Valid; record: ProxyRecord }[] = []
  const factsMemo = new Map()
  for (const v of valid) {
    const d = verdict.get(v)!
    if (d === 'duplicate') {
      results[v.index] = { index: v.index, eventId: v.event.eventId, status: 'duplicate', code: 'duplicate_delivery', httpStatus: 409, message: 'this event was already accepted' }
      continue
    }
    const envelope = await buildEnvelope({ type: v.type, event: v.event, key: v.key, dedupe: d }, ctx, settings.ipHashSecret, factsMemo)
    toSend.push({ v, record: { key: v.event.impressionId, value: envelope } })
  }

  const sent = await forward(EVENTS_TOPIC, toSend, (x) => x.record, { ...proxyOptions(settings), attempts: settings.forwardAttempts })
  let durable = true
  let spooled = 0
  const lost = new Set<Valid>()
  if (sent.undelivered.length > 0) {
    try {
      const r = await spoolFor(env, ctx.publisher.id).enqueue(sent.undelivered.map(({ item }) => ({ topic: EVENTS_TOPIC, ...item.record })))
      spooled = r.spooled
    } catch {
      // Their keys are never confirmed, so the client's retry is judged new, not a duplicate.
      durable = false
      for (const { item } of sent.undelivered) lost.add(item.v)
    }
  }
  const confirming = confirmKeys(env, toSend.map((x) => x.v).filter((v) => !lost.has(v) && verdict.get(v) === 'new'), settings.dedupeTimeoutMs)
  if (opts.later) opts.later(confirming)
  else await confirming
  for (const { v } of toSend) {
    results[v.index] = lost.has(v)
      ? { index: v.index, eventId: v.event.eventId, status: 'failed', code: 'upstream_unavailable', httpStatus: 503, message: 'the event could not be stored; retry it' }
      : { index: v.index, eventId: v.event.eventId, status: 'accepted' }
  }
  const counts = { received: results.length, accepted: 0, duplicate: 0, rejected: 0 }
  for (const r of results) {
    if (r.status === 'accepted') counts.accepted++
    else if (r.status === 'duplicate') counts.duplicate++
    else if (r.status === 'rejected') counts.rejected++
  }
  return { results, counts, durable, delivered: sent.delivered.length, spooled }
}

/**
 * Confirms durable events' keys (one RPC per shard touched). A failure here is harmless: the keys
 * stay unconfirmed, a retry of those events is forwarded again and core's exact dedupe drops it.
 */
async function confirmKeys(env: Env, list: Valid[], timeoutMs: number): Promise<void> {
  const byShard = new Map<number, string[]>()
  for (const v of list) {
    const keys = byShard.get(v.shard)
    if (keys) keys.push(v.dedupeKey)
    else byShard.set(v.shard, [v.dedupeKey])
  }
  await Promise.all([...byShard].map(async ([shard, keys]) => {
    try {
      await withTimeout(shardFor(env, shard).confirm(keys), timeoutMs)
    } catch {
      // unconfirmed keys are safe; see above
    }
  }))
}

/** This isolate's edge-stats, summed per publisher and minute (see `StatsBatcher`). */
const edgeStats = new StatsBatcher()

/**
 * Counts a request's outcomes in edge-stats: each accepted, duplicate and rejected event exactly
 * once. For `waitUntil`: the counts leave in this isolate's next stats call (at most
 * `statsFlushMs` later); what the proxy does not take goes to the publisher's Spool like any event.
 */
export function sendStats(env: Env, settings: Settings, publisherId: string, results: EventResult[], receivedAt: number): Promise<void> {
  edgeStats.add(publisherId, results, receivedAt)
  return edgeStats.flush(settings.statsFlushMs, (records) => deliverStats(env, settings, records))
}

async function deliverStats(env: Env, settings: Settings, records: ProxyRecord[]): Promise<void> {
  const sent = await forward(EDGE_STATS_TOPIC, records, (r) => r, { ...proxyOptions(settings), attempts: settings.forwardAttempts })
  const byPublisher = new Map<string, ProxyRecord[]>()
  for (const { item } of sent.undelivered) byPublisher.set(item.key, [...(byPublisher.get(item.key) ?? []), item])
  await Promise.all([...byPublisher].map(async ([publisherId, list]) => {
    try {
      await spoolFor(env, publisherId).enqueue(list.map((record) => ({ topic: EDGE_STATS_TOPIC, ...record })))
    } catch (err) {
      console.error('edge-stats record could not be delivered or spooled', publisherId, err)
    }
  }))
}
