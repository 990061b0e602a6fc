/**
 * Constant-time comparison of secrets (API keys, the edge sync key, REST proxy credentials):
 * SHA-256 first, so both sides have the same length and the comparison leaks neither length nor content.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a, 'utf8').digest(), createHash('sha256').update(b, 'utf8').digest())
}
