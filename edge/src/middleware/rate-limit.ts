import { fail } from '../lib/errors.js'
import { TokenBuckets } from '../lib/rate-limit.js'
import type { PublisherConfig } from '../lib/tenants.js'

const buckets = new TokenBuckets()

/**
 * Charges `cost` tokens (events) to the publisher's bucket; throws 429 rate_limited with
 * Retry-After when it is empty. Called by handlers once the event count is known.
 */
export function enforceRateLimit(publisher: PublisherConfig, cost: number): void {
  const r = buckets.take(publisher.id, publisher.rateLimit, Math.max(1, cost))
  if (!r.ok) {
    throw fail('rate_limited', `publisher ${publisher.id} exceeded ${publisher.rateLimit.perSecond} events/s (burst ${publisher.rateLimit.burst})`, {
      'retry-after': String(r.retryAfterSeconds),
    })
  }
}
