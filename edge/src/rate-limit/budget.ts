/**
 * A publisher's event budget as the routes spend it: charges each request's events to the
 * publisher's RateLimiter object through this isolate's mirror (./rate-limit.ts), all or nothing.
 */
import type { PublisherConfig } from '@adc/schemas'
import type { Env } from '../env.js'
import { fail } from '../errors.js'
import { GlobalRateLimiter, limitMessage, type LimitDecision } from './rate-limit.js'
import type { Settings } from '../settings.js'

/** The publisher's RateLimiter object: one per publisher, the same from every isolate. */
export function limiterFor(env: Env, publisherId: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(`pub:${publisherId}`))
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
 * Charges `cost` events to the publisher's global budget, all or nothing. Never throws: the click
 * redirect must answer whatever the limit says.
 */
export function takeEvents(env: Env, settings: Pick<Settings, 'rateLimitTimeoutMs'>, publisher: PublisherConfig, cost: number): Promise<LimitDecision> {
  return limiter(settings.rateLimitTimeoutMs).take(() => limiterFor(env, publisher.id), publisher.id, publisher.rateLimit, Math.max(1, cost))
}

/**
 * Charges `cost` events (one token per event) to the publisher's global budget; throws 429
 * rate_limited with Retry-After and the limit in the message when they do not all fit. A request
 * is never accepted in part: a client retries it whole, and its events' idempotency keys make the
 * retry safe.
 */
export async function enforceRateLimit(env: Env, settings: Pick<Settings, 'rateLimitTimeoutMs'>, publisher: PublisherConfig, cost: number): Promise<void> {
  const r = await takeEvents(env, settings, publisher, cost)
  if (!r.ok) throw rateLimited(publisher, Math.max(1, cost), r)
}

export function rateLimited(publisher: PublisherConfig, cost: number, r: LimitDecision) {
  return fail('rate_limited', limitMessage(publisher.id, publisher.rateLimit, cost, r), { 'retry-after': String(r.retryAfterSeconds) })
}
