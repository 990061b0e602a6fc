export interface BackoffOptions {
  /** First retry delay ceiling, ms. @default 1000 */
  baseMs?: number
  /** Largest delay, ms. @default 300000 (5 minutes) */
  maxMs?: number
}

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * a uniform delay in [0, min(max, base * 2^attempt)), so clients that failed together do not retry
 * together. `attempt` counts from 0.
 */
export function backoffDelay(attempt: number, { baseMs = 1000, maxMs = 300_000 }: BackoffOptions = {}, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * ceiling)
}

/**
 * `Retry-After` as milliseconds from now (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date);
 * undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (header == null || header.trim() === '') return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/**
 * The wait before the next attempt. With Retry-After: never sooner than the server asked, plus up to
 * `baseMs` of jitter so clients told the same second do not return together; without it, full jitter.
 */
export function nextDelay(attempt: number, retryAfter: number | undefined, options: BackoffOptions = {}, random: () => number = Math.random): number {
  if (retryAfter === undefined) return backoffDelay(attempt, options, random)
  return Math.min(retryAfter, options.maxMs ?? 300_000) + Math.floor(random() * (options.baseMs ?? 1000))
}
