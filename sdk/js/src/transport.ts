import type { Authorizer } from './auth.js'
import { retryAfterMs } from './backoff.js'
import type { Batch } from './batches.js'
import type { EdgeClock } from './clock.js'
import type { Dropped, QueuedEvent } from './types.js'

/** What one POST of a batch came to, per event. */
export interface SendOutcome {
  /** Stored by the edge (accepted, duplicate, or queued on the beacon route): remove from the queue. */
  done: QueuedEvent[]
  /** Refused for good: remove and report. */
  dropped: Array<{ event: QueuedEvent; drop: Dropped }>
  /** Not stored: keep and retry after a backoff. */
  retry: QueuedEvent[]
  /** The server's Retry-After, ms, when it sent one. */
  retryAfterMs?: number
  /** HTTP status, or 0 for a network error. */
  status: number
}

interface EventResult {
  index: number
  status: string
  code?: string
  message?: string
}

/** Whole-request answers that a retry cannot change (README "Edge collector"). */
const NOT_RETRIED = new Set([400, 401, 403, 404, 410, 413, 415, 422])

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; keepalive?: boolean }) => Promise<Response>

export async function sendBatch(
  fetchImpl: FetchLike, endpoint: string, authorizer: Authorizer, batch: Batch,
  extraHeaders: Record<string, string> = {}, keepalive = false, clock?: EdgeClock,
): Promise<SendOutcome> {
  const { url, headers } = await authorizer.authorize(`${endpoint}${batch.path}`, batch.body)
  let res: Response
  const sentAt = clock?.deviceNow() ?? 0
  try {
    res = await fetchImpl(url, { method: 'POST', headers: { ...extraHeaders, ...headers }, body: batch.body, keepalive })
  } catch {
    return { done: [], dropped: [], retry: batch.events, status: 0 }
  }
  const receivedAt = clock?.deviceNow() ?? 0
  const retryAfter = retryAfterMs(res.headers.get('retry-after'))
  let body: { results?: EventResult[]; error?: { code?: string; message?: string } } | undefined
  try {
    body = (await res.json()) as typeof body
  } catch {
    body = undefined
  }
  // Only an answer the edge wrote (per-event results or its error shape) tells the edge's clock: a
  // captive portal's or a proxy's page says nothing about it.
  const fromEdge = Array.isArray(body?.results) || typeof body?.error?.code === 'string'
  const dated = fromEdge && clock !== undefined && clock.observe(res.headers.get('date'), sentAt, receivedAt)
  const base = { status: res.status, ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }) }
  // Per-event answers: a 202, or a 503 upstream_unavailable that says which events were stored.
  if (Array.isArray(body?.results) && (res.status < 300 || res.status >= 500)) {
    const out: SendOutcome = { ...base, done: [], dropped: [], retry: [] }
    const seen = new Set<number>()
    for (const r of body!.results!) {
      const event = batch.events[r.index]
      if (!event || seen.has(r.index)) continue
      seen.add(r.index)
      if (r.status === 'accepted' || r.status === 'duplicate' || r.status === 'queued') out.done.push(event)
      else if (r.status === 'rejected') {
        out.dropped.push({ event, drop: { eventId: event.eventId, type: event.type, code: r.code ?? 'invalid_event', status: res.status, ...(r.message ? { message: r.message } : {}) } })
      } else out.retry.push(event)
    }
    // An event the answer did not mention was not stored.
    batch.events.forEach((e, i) => {
      if (!seen.has(i)) out.retry.push(e)
    })
    return out
  }
  if (res.status >= 200 && res.status < 300) return { ...base, done: batch.events, dropped: [], retry: [] }
  // The edge saw these exact signed bytes before (a resend within the same second, perhaps by a
  // previous run of this app): signing again with a later timestamp makes a new, valid request.
  if (res.status === 401 && body?.error?.code === 'signature_replayed') {
    return { ...base, retryAfterMs: Math.max(retryAfter ?? 0, 1000), done: [], dropped: [], retry: batch.events }
  }
  // The device clock is more than 5 minutes from the edge's: nothing is wrong with the events. The
  // answer's Date header gave the edge's clock to sign on (observed above); without it the events
  // wait for a backoff (the clock may be set right meanwhile) rather than being dropped.
  if (res.status === 401 && body?.error?.code === 'signature_stale') {
    if (dated) return { ...base, retryAfterMs: Math.max(retryAfter ?? 0, 1000), done: [], dropped: [], retry: batch.events }
    return { ...base, done: [], dropped: [], retry: batch.events }
  }
  if (NOT_RETRIED.has(res.status)) {
    const code = body?.error?.code ?? `http_${res.status}`
    const message = body?.error?.message
    return {
      ...base, done: [], retry: [],
      dropped: batch.events.map((event) => ({ event, drop: { eventId: event.eventId, type: event.type, code, status: res.status, ...(message ? { message } : {}) } })),
    }
  }
  // 408, 429, 5xx and anything unexpected: the events were not stored; try again later.
  return { ...base, done: [], dropped: [], retry: batch.events }
}
