/**
 * The RateLimiter Durable Object: one publisher's global event budget, shared by every isolate.
 */
import { DurableObject } from 'cloudflare:workers'
import type { Env } from '../env.js'
import { TokenBuckets, type BucketSpec, type TakeResult } from './rate-limit.js'

export interface RateLimiterStats {
  /** Requests and events let through, and refused, since the object started. */
  allowedRequests: number
  allowedEvents: number
  refusedRequests: number
  refusedEvents: number
}

/**
 * One publisher's global event budget: one object per publisher (`idFromName('pub:<id>')`), so
 * every isolate in every colo spends the same bucket. The caller passes the tenant's limit on
 * each call (the edge's tenant config is the source of the limit; a changed limit applies from
 * the next call).
 *
 * The bucket lives in memory only: a write per request would put a storage round trip on every
 * ingest request. An object that restarts (deploy, eviction after idling) starts with a full
 * bucket, i.e. at most one extra burst; an idle publisher's bucket would have refilled anyway.
 */
export class RateLimiter extends DurableObject<Env> {
  private readonly bucket = new TokenBuckets()
  private readonly counters: RateLimiterStats = { allowedRequests: 0, allowedEvents: 0, refusedRequests: 0, refusedEvents: 0 }

  /** Charges `cost` events when the bucket holds them all; otherwise charges nothing. */
  take(spec: BucketSpec, cost: number): TakeResult {
    const r = this.bucket.take('bucket', spec, cost)
    if (r.ok) {
      this.counters.allowedRequests++
      this.counters.allowedEvents += cost
    } else {
      this.counters.refusedRequests++
      this.counters.refusedEvents += cost
    }
    return r
  }

  stats(): RateLimiterStats {
    return { ...this.counters }
  }
}
