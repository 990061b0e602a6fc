import type { EventType } from '@adc/schemas'
import { MAX_BATCH_EVENTS } from '@adc/schemas/limits'
import { monotonicFactory } from 'ulid'
import { createAuthorizer, type Auth } from './auth.js'
import { nextDelay, type BackoffOptions } from './backoff.js'
import { batchOf, maxBodyBytes, planBatches, type Batch } from './batches.js'
import { createEdgeClock } from './clock.js'
import { browserLifecycle, type Lifecycle } from './lifecycle.js'
import { createQueue } from './queue.js'
import { memoryStorage, type QueueStorage } from './storage/storage.js'
import { sendBatch, type FetchLike, type SendOutcome } from './transport.js'
import type { ClickFields, Dropped, ImpressionFields, QueuedEvent } from './types.js'

export const SDK_VERSION = '0.1.0'

export interface ClientOptions {
  /** The edge's base URL, e.g. `https://collect.example.com`. */
  endpoint: string
  /** Filled into every event that does not say otherwise. */
  publisherId: string
  auth: Auth
  /** Where queued events live between runs. @default memoryStorage() */
  storage?: QueueStorage
  /** Flush when this many events wait. @default 20 */
  flushAt?: number
  /** Flush when this many bytes of events wait. @default 32768 */
  flushBytes?: number
  /** Flush at least this often, ms; 0 turns the timer off. @default 30000 */
  flushIntervalMs?: number
  /** Cap of the queue; past it the oldest event is shed (`queue_full`). @default 1000 */
  maxQueueEvents?: number
  /** Retry backoff (full jitter). @default { baseMs: 1000, maxMs: 300000 } */
  backoff?: BackoffOptions
  /** false withholds client facts: events carry `consent: false` and no userKey, ua or ip. @default true */
  consent?: boolean
  /** Fields added to every event (e.g. `{ channel: 'app', device: 'mobile' }`). */
  defaults?: Partial<ImpressionFields>
  /** Hooks that flush when the app goes away. @default browserLifecycle() in browsers, none elsewhere */
  lifecycle?: Lifecycle[]
  /** Told of every event given up: rejected by the edge, refused with its request, or shed by the cap. */
  onRejected?: (dropped: Dropped) => void
  /** Told of failures that do not lose events (a storage write failed; events stay in memory). */
  onError?: (error: unknown) => void
  /** `User-Agent` outside browsers, so the edge sees an SDK rather than a bare HTTP library. @default `adc-js/<version> (<platform>)` */
  userAgent?: string
  fetch?: FetchLike
  now?: () => number
  /**
   * A monotonic clock, ms, against which a jump of `now` is seen (clock.ts). @default
   * `performance.now()` when `now` is not given, none otherwise
   */
  monotonicNow?: () => number
  random?: () => number
}

export interface FlushResult {
  delivered: number
  dropped: number
  /** Events still queued (waiting for a retry, or added meanwhile). */
  pending: number
  /** When a retry is scheduled, ms from now. */
  retryInMs?: number
}

export interface ClientStats {
  queued: number
  /** Events the edge stored, and events handed to sendBeacon (counted in `beaconed` too). */
  delivered: number
  /** Events sendBeacon took: the browser queued them; whether the edge stored them is not seen. */
  beaconed: number
  dropped: number
  /** Events shed by the queue cap. */
  shed: number
  /** Requests that failed in a retryable way. */
  retries: number
}

export interface Client {
  /** Queues an impression; resolves with its eventId once the queue holding it is stored. */
  impression(fields: ImpressionFields): Promise<string>
  /** Queues a click; public-key clients should pass the ad server's `clickToken`. */
  click(fields: ClickFields): Promise<string>
  /** Sends what is queued now (unless a retry is pending: the server's Retry-After is honoured). */
  flush(): Promise<FlushResult>
  /** Flushes once more, then stops timers and hooks; queued events stay in storage for the next run. */
  shutdown(): Promise<void>
  setConsent(consent: boolean): void
  stats(): ClientStats
}

const utf8 = new TextEncoder()

/**
 * `adc-js/<version> (<platform>)`: the SDK says what it is, and in a shape bot lists accept (isbot
 * flags a bare `name/version`, and any agent naming Node, as a bot).
 */
export function defaultUserAgent(): string {
  const g = globalThis as { navigator?: { product?: string }; process?: { platform?: string; arch?: string } }
  const platform = g.navigator?.product === 'ReactNative' ? 'react-native' : g.process?.platform ? `${g.process.platform} ${g.process.arch ?? ''}`.trim() : 'js'
  return `adc-js/${SDK_VERSION} (${platform})`
}
const hasDocument = () => typeof (globalThis as { document?: unknown }).document !== 'undefined'

export function createClient(options: ClientOptions): Client {
  const {
    endpoint, publisherId, auth, storage = memoryStorage(), flushAt = 20, flushBytes = 32 * 1024, flushIntervalMs = 30_000,
    maxQueueEvents = 1000, backoff = {}, defaults = {}, onRejected, onError, now = Date.now, random = Math.random,
  } = options
  const base = endpoint.replace(/\/+$/, '')
  const fetchImpl: FetchLike = options.fetch ?? ((url, init) => globalThis.fetch(url, init))
  const monotonic = options.monotonicNow ?? (options.now === undefined && typeof performance !== 'undefined' ? () => performance.now() : undefined)
  // Events' ts and request signatures are on the edge's clock as learnt from its answers (clock.ts).
  const clock = createEdgeClock(now, monotonic)
  const authorizer = createAuthorizer(auth, () => clock.deviceNow() + clock.offset())
  const newId = monotonicFactory()
  const headers: Record<string, string> = hasDocument() ? {} : { 'user-agent': options.userAgent ?? defaultUserAgent() }
  let consent = options.consent ?? true
  let stopped = false
  let attempt = 0
  let retryAt = 0
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let flushing: Promise<FlushResult> | null = null
  const counters = { delivered: 0, dropped: 0, retries: 0, beaconed: 0 }

  const report = (drop: Dropped) => {
    counters.dropped++
    try {
      onRejected?.(drop)
    } catch (err) {
      onError?.(err)
    }
  }
  const queue = createQueue(storage, {
    maxEvents: maxQueueEvents,
    onShed: (e) => report({ eventId: e.eventId, type: e.type, code: 'queue_full', message: `the queue holds at most ${maxQueueEvents} events` }),
  })
  const ready = queue.load().catch((err) => onError?.(err))

  function build(type: EventType, fields: ImpressionFields | ClickFields): QueuedEvent {
    const event: Record<string, unknown> = { publisherId, ...defaults, ...fields }
    const deviceTs = clock.deviceNow()
    const confirmed = clock.confirmed()
    const offset = confirmed ?? clock.offset()
    // Fixed here, once: every retry of this event carries the same id, hence the same idempotency key.
    event.eventId ??= newId(deviceTs + offset)
    const stamped = event.ts == null
    if (stamped) event.ts = deviceTs + offset
    if (!consent) {
      event.consent = false
      delete event.userKey
      delete event.ua
      delete event.ip
    }
    const json = JSON.stringify(event)
    const queued: QueuedEvent = { type, eventId: String(event.eventId), json, bytes: utf8.encode(json).length }
    if (stamped) Object.assign(queued, { deviceTs, tsOffset: offset }, confirmed === undefined ? { tsGuess: true } : {})
    return queued
  }

  /** The event with `ts` moved to its device time plus `offset` (only the ts the client stamped). */
  function retimed(e: QueuedEvent, offset: number): QueuedEvent {
    const { tsGuess: _guess, ...rest } = e
    if (offset === e.tsOffset) return rest
    const event = JSON.parse(e.json) as Record<string, unknown>
    event.ts = e.deviceTs! + offset
    const json = JSON.stringify(event)
    return { ...rest, json, bytes: utf8.encode(json).length, tsOffset: offset }
  }

  /**
   * Events made before an offset to the edge's clock was confirmed carry the device's guess: once
   * one is, their ts are corrected by it (the offset of the device clock they were made on) before
   * they are sent, and stored so.
   */
  async function settleTimestamps(): Promise<void> {
    const offset = clock.confirmed()
    if (offset === undefined) return
    const guessed = queue.peek().filter((e) => e.tsGuess && e.deviceTs !== undefined)
    if (guessed.length > 0) await storeRetimed(guessed, offset)
  }

  /** Puts `events` retimed to `offset` (`retimed`) in place of themselves in the queue, and answers them so; a storage failure is reported (`onError`). */
  async function storeRetimed(events: QueuedEvent[], offset: number): Promise<QueuedEvent[]> {
    const updated = events.map((e) => retimed(e, offset))
    try {
      await queue.replace(updated)
    } catch (err) {
      onError?.(err)
    }
    return updated
  }

  /**
   * An event refused as `clock_skew` whose ts the client stamped is kept and retried with its ts on
   * the edge's clock, when the answer (its Date) confirmed an offset the event was not sent with: the
   * device clock was off, or jumped since the offset it carries was learnt. It is retried at most
   * once per offset learnt; otherwise it is dropped as the edge said.
   */
  async function retimeSkewed(outcome: SendOutcome): Promise<SendOutcome> {
    const offset = clock.confirmed()
    if (offset === undefined) return outcome
    const fixable = outcome.dropped.filter(({ event: e, drop }) => drop.code === 'clock_skew' && e.deviceTs !== undefined && Math.abs(offset - (e.tsOffset ?? 0)) >= 1000)
    if (fixable.length === 0) return outcome
    const updated = await storeRetimed(fixable.map(({ event }) => event), offset)
    return { ...outcome, dropped: outcome.dropped.filter((d) => !fixable.includes(d)), retry: [...outcome.retry, ...updated] }
  }

  function enqueue(type: EventType, fields: ImpressionFields | ClickFields): Promise<string> {
    if (stopped) throw new Error('the client is shut down')
    const event = build(type, fields)
    return (async () => {
      await ready
      try {
        await queue.push([event])
      } catch (err) {
        onError?.(err)
      }
      if (queue.size >= flushAt || queue.bytes >= flushBytes) background()
      return event.eventId
    })()
  }

  async function apply(outcome: SendOutcome): Promise<void> {
    const gone = [...outcome.done, ...outcome.dropped.map((d) => d.event)].map((e) => e.eventId)
    try {
      await queue.remove(gone)
    } catch (err) {
      onError?.(err)
    }
    counters.delivered += outcome.done.length
    for (const d of outcome.dropped) report(d.drop)
  }

  function scheduleRetry(retryAfter: number | undefined): number {
    const delay = nextDelay(attempt, retryAfter, backoff, random)
    attempt++
    counters.retries++
    retryAt = now() + delay
    if (retryTimer !== undefined) clearTimeout(retryTimer)
    if (!stopped) {
      retryTimer = setTimeout(() => {
        retryTimer = undefined
        background()
      }, delay)
      ;(retryTimer as { unref?: () => void }).unref?.()
    }
    return delay
  }

  /**
   * Hands a batch to navigator.sendBeacon (page going away); true only when sendBeacon returned
   * `true` (the browser queued it): anything else (false, a throw, a wrapper's promise or undefined)
   * keeps the events queued. The edge's answer to a beacon is never seen: a beacon the browser took
   * but the edge refused (or that never arrived) is not retried.
   */
  function beacon(batch: Batch): boolean {
    const url = authorizer.beaconUrl(`${base}${batch.path}`)
    const nav = (globalThis as { navigator?: { sendBeacon?: (url: string, data: string) => unknown } }).navigator
    if (url === null || typeof nav?.sendBeacon !== 'function') return false
    try {
      const taken = nav.sendBeacon(url, batch.body) === true
      if (taken) counters.beaconed += batch.events.length
      return taken
    } catch {
      return false
    }
  }

  /**
   * Sends one batch. A 413 (a proxy in front of the edge, or an edge, with a lower body limit than
   * the SDK plans for) says nothing about the events: the batch is split in halves and each sent on
   * its own, so only an event refused alone is dropped. A half that must be retried stops the pass,
   * and the halves not sent yet are retried with it.
   */
  async function send(batch: Batch, urgent: boolean): Promise<SendOutcome> {
    const outcome = await sendBatch(fetchImpl, base, authorizer, batch, headers, urgent, clock)
    if (outcome.status !== 413 || batch.events.length < 2) return outcome
    const half = Math.ceil(batch.events.length / 2)
    const parts = [batch.events.slice(0, half), batch.events.slice(half)]
    const merged: SendOutcome = { done: [], dropped: [], retry: [], status: outcome.status }
    for (const part of parts) {
      if (merged.retry.length > 0) {
        merged.retry.push(...part)
        continue
      }
      const sub = await send(batchOf(authorizer.route, batch.path, part), urgent)
      merged.done.push(...sub.done)
      merged.dropped.push(...sub.dropped)
      merged.retry.push(...sub.retry)
      merged.status = sub.status
      if (sub.retryAfterMs !== undefined) merged.retryAfterMs = sub.retryAfterMs
    }
    return merged
  }

  /** Events per request: the edge's maximum, halved by each 429 and doubled back by each success. */
  let batchEvents = MAX_BATCH_EVENTS

  async function flushOnce(urgent: boolean): Promise<FlushResult> {
    await ready
    const result: FlushResult = { delivered: 0, dropped: 0, pending: 0 }
    const wait = retryAt - now()
    if (wait > 0) return { ...result, pending: queue.size, retryInMs: wait }
    await settleTimestamps()
    const { batches, oversized } = planBatches(authorizer.route, queue.peek(), maxBodyBytes(authorizer.route), batchEvents)
    if (oversized.length > 0) {
      await apply({
        done: [], retry: [], status: 0,
        dropped: oversized.map((event) => ({ event, drop: { eventId: event.eventId, type: event.type, code: 'event_too_large', message: `one event exceeds the ${maxBodyBytes(authorizer.route)}-byte body limit` } })),
      })
      result.dropped += oversized.length
    }
    for (const batch of batches) {
      if (urgent && beacon(batch)) {
        await apply({ done: batch.events, dropped: [], retry: [], status: 0 })
        result.delivered += batch.events.length
        continue
      }
      const outcome = await retimeSkewed(await send(batch, urgent))
      await apply(outcome)
      result.delivered += outcome.done.length
      result.dropped += outcome.dropped.length
      if (outcome.retry.length > 0) {
        // The edge takes or refuses a request whole against the publisher's event budget: a batch
        // larger than the bucket's burst would be refused forever, so a 429 halves the next batches.
        if (outcome.status === 429) batchEvents = Math.max(1, Math.floor(batch.events.length / 2))
        result.retryInMs = scheduleRetry(outcome.retryAfterMs)
        break
      }
      attempt = 0
      batchEvents = Math.min(MAX_BATCH_EVENTS, batchEvents * 2)
    }
    result.pending = queue.size
    return result
  }

  let nextFlush: Promise<FlushResult> | null = null

  /**
   * The page is going away: every queued event goes to sendBeacon now, even while a pass waits on a
   * request (which the browser may cancel with the page) or a retry is pending (its wait outlasts the
   * page, and a memory queue with it). The edge dedupes an event both sent by id. What sendBeacon does
   * not take goes to an urgent pass (fetch keepalive).
   */
  async function flushUrgent(): Promise<void> {
    await ready
    const nav = (globalThis as { navigator?: { sendBeacon?: unknown } }).navigator
    if (authorizer.beaconUrl(base) !== null && typeof nav?.sendBeacon === 'function') {
      await settleTimestamps()
      for (const batch of planBatches(authorizer.route, queue.peek(), maxBodyBytes(authorizer.route)).batches) {
        if (!beacon(batch)) break
        await apply({ done: batch.events, dropped: [], retry: [], status: 0 })
      }
    }
    await flush(true)
  }

  /** A flush nobody awaits (timers, thresholds, hooks): a failure goes to onError, never unhandled. */
  function background(urgent = false): void {
    ;(urgent ? flushUrgent() : flush(false)).catch((err) => onError?.(err))
  }

  /** One pass at a time; a call during a pass gets the next pass, which sees events added meanwhile. */
  function flush(urgent = false): Promise<FlushResult> {
    if (!flushing) {
      flushing = flushOnce(urgent).finally(() => {
        flushing = null
      })
      return flushing
    }
    if (!nextFlush) {
      nextFlush = flushing.catch(() => undefined).then(() => {
        nextFlush = null
        return flush(urgent)
      })
    }
    return nextFlush
  }

  let interval: ReturnType<typeof setInterval> | undefined
  if (flushIntervalMs > 0) {
    interval = setInterval(background, flushIntervalMs)
    ;(interval as { unref?: () => void }).unref?.()
  }
  const hooks = options.lifecycle ?? (hasDocument() ? [browserLifecycle()] : [])
  const unsubscribe = hooks.map((hook) => hook((urgent) => background(urgent)))

  return {
    impression: (fields) => enqueue('impression', fields),
    click: (fields) => enqueue('click', fields),
    flush: () => flush(false),
    async shutdown() {
      if (stopped) return
      stopped = true
      if (interval !== undefined) clearInterval(interval)
      for (const off of unsubscribe) off()
      if (flushing) await flushing.catch(() => undefined)
      await flush(false).catch((err) => onError?.(err))
      if (retryTimer !== undefined) clearTimeout(retryTimer)
    },
    setConsent(value) {
      consent = value
    },
    stats: () => ({ queued: queue.size, shed: queue.shed, ...counters }),
  }
}
