import { TokenBuckets, type BucketSpec } from '@adc/schemas'
import type { MiddlewareHandler } from 'hono'
import type { ApiEnv } from './context.js'
import { ApiError } from './errors.js'

/**
 * A request budget per API key on core's public API: a token bucket per advertiser and publisher
 * key holder, one token per request. Every read it serves is a ClickHouse query on the engine the
 * processor writes to, so one customer's script looping on the API must not slow everyone's
 * counting. Over it: 429 `api_rate_limited` with Retry-After.
 *
 * The budget is core's config (API_RATE_LIMIT_PER_SECOND, API_RATE_LIMIT_BURST: 20 requests/s, burst
 * 60, by default); wall-clock time, whatever clock the API reads days by. Admin keys are not limited (operators, and their scripts, act for the service). Each replica keeps
 * its own buckets, so a fleet of n replicas behind a load balancer allows up to n times the limit:
 * set it per replica.
 */
export function keyLimit(spec: BucketSpec): MiddlewareHandler<ApiEnv> {
  const buckets = new TokenBuckets(Date.now)
  return async function limitPerKey(c, next) {
    const principal = c.get('principal')
    // No principal: the edge's config pull, authenticated by its own key.
    if (!principal || principal.kind === 'admin') return next()
    const r = buckets.take(`${principal.kind}:${principal.id}`, spec, 1)
    if (!r.ok) {
      c.header('Retry-After', String(r.retryAfterSeconds))
      throw new ApiError('api_rate_limited', `this key sent more than ${spec.perSecond} requests/s (burst ${spec.burst}); retry after ${r.retryAfterSeconds} s`)
    }
    await next()
  }
}
