/** Longest wait between Spool delivery rounds while the proxy keeps failing. */
export const MAX_RETRY_DELAY_MS = 5 * 60_000

/** Exponential backoff with ±20 % jitter: first · 2^(failStreak-1), capped at 5 minutes. */
export function nextRetryDelay(firstMs: number, failStreak: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_RETRY_DELAY_MS, firstMs * 2 ** Math.max(0, Math.min(30, failStreak - 1)))
  return Math.round(base * (0.8 + 0.4 * random()))
}
