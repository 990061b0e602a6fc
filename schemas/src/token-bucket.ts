/**
 * Token buckets by id, with an injectable clock: the edge's publisher budgets (its RateLimiter
 * objects and each isolate's mirror, edge/src/rate-limit/) and core's per-key API limit
 * (core/src/api/key-limit.ts) spend the same arithmetic.
 */
export interface BucketSpec {
  perSecond: number
  burst: number
}

export interface TakeResult {
  ok: boolean
  /** Whole seconds until the request could pass (0 when ok). */
  retryAfterSeconds: number
  /** Tokens left in the bucket after this request, fractional. */
  tokens: number
  /** The request costs more tokens than the bucket can ever hold: it can never pass whole. */
  overBurst: boolean
}

interface Bucket {
  tokens: number
  at: number
  spec: BucketSpec
}

/** Token buckets by id: a limiter's state (one bucket per publisher budget, or per API key). */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Charges `cost` tokens when the bucket holds them all; otherwise charges nothing. A request
   * larger than the burst is refused (`overBurst`) and charges nothing: it could never pass, and
   * charging it only the burst would let a 500-event batch through a 10-event bucket.
   */
  take(id: string, spec: BucketSpec, cost: number): TakeResult {
    const b = this.refilled(id, spec)
    const r = judge(b.tokens, spec, cost)
    if (r.ok) {
      b.tokens -= cost
      r.tokens = b.tokens
    }
    return r
  }

  /** What `take` would answer now, without charging anything. */
  check(id: string, spec: BucketSpec, cost: number): TakeResult {
    return judge(this.refilled(id, spec).tokens, spec, cost)
  }

  /** Sets the bucket to a level read elsewhere (the global limiter's answer), as of `at`. */
  set(id: string, spec: BucketSpec, tokens: number, at: number = this.now()): void {
    this.buckets.set(id, { tokens: Math.max(0, Math.min(spec.burst, tokens)), at, spec })
  }

  private refilled(id: string, spec: BucketSpec): Bucket {
    const now = this.now()
    let b = this.buckets.get(id)
    if (!b) {
      b = { tokens: spec.burst, at: now, spec }
      this.buckets.set(id, b)
      return b
    }
    // Refill at the rate in force since the last request; a changed limit applies from now on.
    // Rounded to a millionth of a token, so the level does not depend on how often it was refilled:
    // two buckets refilled at different moments (an isolate's mirror and the global bucket) must give
    // the same answer at the same time, and float sums of the same time in different steps differ in
    // their last bits (5.75 + 0.53 is 6.279999999999999, 6.28 in one step).
    b.tokens = Math.round(Math.min(spec.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * b.spec.perSecond) * 1e6) / 1e6
    b.at = now
    b.spec = spec
    return b
  }
}

function judge(tokens: number, spec: BucketSpec, cost: number): TakeResult {
  if (cost > spec.burst) return { ok: false, retryAfterSeconds: secondsUntil(spec.burst, tokens, spec), tokens, overBurst: true }
  if (tokens >= cost) return { ok: true, retryAfterSeconds: 0, tokens, overBurst: false }
  return { ok: false, retryAfterSeconds: secondsUntil(cost, tokens, spec), tokens, overBurst: false }
}

function secondsUntil(need: number, have: number, spec: BucketSpec): number {
  return Math.max(1, Math.ceil((need - have) / spec.perSecond))
}

