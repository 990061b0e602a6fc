/**
 * A publisher's event budgets as the routes spend them: charges each request's events to the
 * publisher's RateLimiter object for the request's kind of credential, through this isolate's
 * mirror (./rate-limit.ts), all or nothing.
 *
 * One budget per publisher and kind of credential (`Credential`), each with the publisher's limit:
 * the public key is in every page that carries the tag, a token in every ad's markup, an app-scope
 * request key's secret inside every copy of an app (`app_signature`), a server-scope one on the
 * publisher's servers (`request_signature`). Whoever reads one of them can spend its budget, but never
 * another's: a flood through the public key or an unpacked app cannot starve the publisher's
 * server-to-server batches, nor the pixels and click redirects of its real visitors, and the
 * reverse. A publisher can so send up to five times its limit in all, each kind at most once its limit.
 */
import type { PublisherConfig } from '@adc/schemas'
import type { Credential } from '../context.js'
import type { Env } from '../env.js'
import { fail } from '../errors.js'
import { GlobalRateLimiter, limitMessage, type LimitDecision } from './rate-limit.js'
import { enforceClientShare } from './client-limit.js'
import type { Settings } from '../settings.js'

/**
 * The name of a publisher's budget for one kind of credential (the server key's keeps its original
 * name). The kind follows a `/`, which no publisher id holds (`ID_PATTERN`), so no two publishers'
 * budgets can share a name.
 */
export const budgetName = (publisherId: string, credential: Credential): string =>
  credential === 'server_key' ? `pub:${publisherId}` : `pub:${publisherId}/${credential}`

/** The publisher's RateLimiter object for one kind of credential: the same from every isolate. */
export function limiterFor(env: Env, publisherId: string, credential: Credential = 'server_key') {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(budgetName(publisherId, credential)))
}

// One per isolate: its mirror of each publisher's global level, and the fallback bucket.
const limiters = new Map<number, GlobalRateLimiter>()

function limiter(timeoutMs: number): GlobalRateLimiter {
  let l = limiters.get(timeoutMs)
  if (!l) {
    l = new GlobalRateLimiter({
      timeoutMs,
      onFallback: (publisherId, err) => {
        console.error('rate limiter unreachable; enforcing the per-isolate limit', publisherId, err instanceof Error ? err.message : err)
      },
    })
    limiters.set(timeoutMs, l)
  }
  return l
}

/**
 * Charges `cost` events to the publisher's global budget for `credential`, all or nothing. Never
 * throws: the click redirect must answer whatever the limit says.
 */
export function takeEvents(env: Env, settings: Pick<Settings, 'rateLimitTimeoutMs'>, publisher: PublisherConfig, credential: Credential, cost: number): Promise<LimitDecision> {
  return limiter(settings.rateLimitTimeoutMs).take(() => limiterFor(env, publisher.id, credential), budgetName(publisher.id, credential), publisher.rateLimit, Math.max(1, cost))
}

/**
 * Charges `cost` events (one token per event) to the publisher's global budget for `credential`; throws 429
 * rate_limited with Retry-After and the limit in the message when they do not all fit. A request
 * is never accepted in part: a client retries it whole, and its events' idempotency keys make the
 * retry safe. What anyone can send first spends the client address's share (client-limit.ts:
 * 429 client_rate_limited), so a client over it spends none of the publisher's budget.
 */
export async function enforceRateLimit(env: Env, settings: Pick<Settings, 'rateLimitTimeoutMs'>, publisher: PublisherConfig, credential: Credential, cost: number, clientIp: string | undefined): Promise<void> {
  await enforceClientShare(env, credential, publisher.id, clientIp, cost)
  const r = await takeEvents(env, settings, publisher, credential, cost)
  if (!r.ok) throw rateLimited(publisher, Math.max(1, cost), r)
}

export function rateLimited(publisher: PublisherConfig, cost: number, r: LimitDecision) {
  return fail('rate_limited', limitMessage(publisher.id, publisher.rateLimit, cost, r), { 'retry-after': String(r.retryAfterSeconds) })
}
