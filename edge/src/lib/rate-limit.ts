/**
 * A token bucket per publisher, held in the isolate.
 *
 * Why in-isolate and not a Durable Object per publisher: the check costs no network hop, so a
 * request from one publisher never waits behind another publisher's traffic, and a flood from one
 * publisher only drains its own bucket. The price is that on Cloudflare each isolate enforces the
 * limit on its own (the effective limit is per isolate, not global); for abuse protection in front
 * of a log that dedupes and scores traffic downstream that is the right trade. A global limit
 * would use a DO per publisher and pay one RPC per request.
 */
export interface BucketSpec {
  perSecond: number
  burst: number
}

export interface TakeResult {
  ok: boolean
  /** Whole seconds until `cost` tokens are available (only when !ok). */
  retryAfterSeconds: number
  remaining: number
}

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(private readonly now: () => number = Date.now) {}

  take(id: string, spec: BucketSpec, cost: number): TakeResult {
    const now = this.now()
    let b = this.buckets.get(id)
    if (!b) {
      b = { tokens: spec.burst, at: now }
      this.buckets.set(id, b)
    }
    b.tokens = Math.min(spec.burst, b.tokens + ((now - b.at) / 1000) * spec.perSecond)
    b.at = now
    // A request larger than the burst could never pass; it is charged the whole burst instead.
    const need = Math.min(cost, spec.burst)
    if (b.tokens >= need) {
      b.tokens -= need
      return { ok: true, retryAfterSeconds: 0, remaining: Math.floor(b.tokens) }
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((need - b.tokens) / spec.perSecond)), remaining: Math.floor(b.tokens) }
  }
}
