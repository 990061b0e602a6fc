/**
 * Rate limits count events: one token per event, per publisher, in a token bucket of the tenant
 * config's `rateLimit` (`perSecond` refill, `burst` capacity).
 *
 * The bucket that decides is global per publisher: a RateLimiter Durable Object
 * (edge/src/rate-limit/rate-limiter.ts) holds it, so every isolate in every colo spends the same budget.
 * Each isolate keeps a mirror of what the limiter last answered, used two ways, never as a second
 * opinion:
 * - a pre-check: other isolates only ever take tokens out of the global bucket, so the mirror,
 *   refilled since, is an upper bound of the global level; a request the mirror cannot cover is
 *   refused without a round trip, and one the global bucket would take is never refused.
 * - a fallback: when the limiter cannot answer in time, the isolate spends the mirror itself and
 *   fails open at the per-isolate limit (see GlobalRateLimiter).
 */
export { TokenBuckets, type BucketSpec, type TakeResult } from '@adc/schemas'
import { TokenBuckets, type BucketSpec, type TakeResult } from '@adc/schemas'

/** The global bucket of one publisher, as the RateLimiter object answers it. */
export interface LimiterRemote {
  take(spec: BucketSpec, cost: number): Promise<TakeResult>
}

/**
 * Who decided: `global` the limiter object; `precheck` this isolate's mirror, sure the global
 * bucket would refuse; `fallback` this isolate alone, because the limiter did not answer in time.
 */
export type LimitSource = 'global' | 'precheck' | 'fallback'

export interface LimitDecision extends TakeResult {
  source: LimitSource
}

export interface GlobalRateLimiterOptions {
  /** How long to wait for the limiter object before deciding in the isolate. */
  timeoutMs: number
  /** After a failure, how long the isolate decides alone before asking the limiter again. @default 5000 */
  retryRemoteAfterMs?: number
  now?: () => number
  /** Told when the limiter fails (once a minute per publisher at most). */
  onFallback?: (publisherId: string, err: unknown) => void
}

/**
 * One per isolate. Asks the publisher's limiter object and keeps its answer as the mirror; decides
 * alone only when that never lets more through than the global limit (pre-check), or when the
 * limiter is unreachable or slower than `timeoutMs` (fallback; then for `retryRemoteAfterMs` the
 * isolate does not wait for it again, so an outage costs one timeout, not one per request).
 *
 * Fail-open, bounded: a billing collector that refuses events because its limiter is down loses
 * billable events and invites retry storms, while events let through are still deduped and
 * scored downstream. So an unreachable limiter degrades to the per-isolate limit (the mirror,
 * spent locally from the last global reading), never to "no limit" and never to "refuse all".
 */
export class GlobalRateLimiter {
  private readonly mirror: TokenBuckets
  /** Publishers whose mirror was spent locally since the last global reading: no longer an upper bound. */
  private readonly spentLocally = new Set<string>()
  private readonly remoteDownUntil = new Map<string, number>()
  private readonly lastFallbackLog = new Map<string, number>()
  private readonly now: () => number

  constructor(private readonly opts: GlobalRateLimiterOptions) {
    this.now = opts.now ?? Date.now
    this.mirror = new TokenBuckets(this.now)
  }

  async take(remote: () => LimiterRemote, publisherId: string, spec: BucketSpec, cost: number): Promise<LimitDecision> {
    if (cost > spec.burst) return { ...this.mirror.check(publisherId, spec, cost), source: 'precheck' }
    if (!this.spentLocally.has(publisherId)) {
      // Other isolates only take tokens out of the global bucket, so the mirror refilled since the
      // last reading is an upper bound of the global level: what it refuses, the limiter would too.
      const pre = this.mirror.check(publisherId, spec, cost)
      if (!pre.ok) return { ...pre, source: 'precheck' }
    }
    if ((this.remoteDownUntil.get(publisherId) ?? 0) <= this.now()) {
      try {
        const sentAt = this.now()
        const r = await withTimeout(remote().take(spec, cost), this.opts.timeoutMs)
        // Stamped with the time the question left, not the answer's arrival: the level the
        // limiter read then has refilled at least since, so the mirror stays an upper bound.
        this.mirror.set(publisherId, spec, r.tokens, sentAt)
        this.spentLocally.delete(publisherId)
        this.remoteDownUntil.delete(publisherId)
        return { ...r, source: 'global' }
      } catch (err) {
        this.remoteDownUntil.set(publisherId, this.now() + (this.opts.retryRemoteAfterMs ?? 5000))
        this.noteFallback(publisherId, err)
      }
    }
    this.spentLocally.add(publisherId)
    return { ...this.mirror.take(publisherId, spec, cost), source: 'fallback' }
  }

  private noteFallback(publisherId: string, err: unknown): void {
    const now = this.now()
    const last = this.lastFallbackLog.get(publisherId)
    if (last !== undefined && now - last < 60_000) return
    this.lastFallbackLog.set(publisherId, now)
    this.opts.onFallback?.(publisherId, err)
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`rate limiter did not answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => {
    if (timer !== undefined) clearTimeout(timer)
  })
}

/** The 429 message: the limit, and what to do about it. */
export function limitMessage(publisherId: string, spec: BucketSpec, cost: number, r: TakeResult): string {
  const limit = `${spec.perSecond} events/s, burst ${spec.burst}`
  if (r.overBurst) {
    return `publisher ${publisherId}: a request of ${cost} events can never fit the limit of ${limit}; send at most ${spec.burst} events per request`
  }
  return `publisher ${publisherId} exceeded its limit of ${limit} (the request needs ${cost} events, ${Math.floor(r.tokens)} left); retry after ${r.retryAfterSeconds} s`
}
