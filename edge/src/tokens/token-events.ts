/**
 * The impression or click a pixel or redirect token stands for, with an event id derived from the token.
 */
import type { EventType, TokenPayload } from '@adc/schemas'
import { encodeTime, TIME_MAX } from 'ulid'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/**
 * A ULID event id derived from the token itself: the time part is `timeMs` (the caller passes a
 * time fixed by the token, its expiry less the dedupe window), the 80 random bits are the first
 * bits of SHA-256 over `type US token`. Reloading a pixel sends the same token, so it gets the
 * same id and the same idempotency key: the impression is counted once. Because the id carries a
 * real time, every later stage that files keys by the id's time (the edge's dedupe shard and its
 * time-ordered table, core's delivery buckets) treats it like any client's ULID.
 */
export async function eventIdFromToken(token: string, type: EventType, timeMs: number): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${type}\u001f${token}`)))
  let bits = ''
  for (const b of digest.subarray(0, 10)) bits += b.toString(2).padStart(8, '0')
  let random = ''
  for (let i = 0; i < 16; i++) random += CROCKFORD[parseInt(bits.slice(i * 5, i * 5 + 5), 2)]
  // A token's expiry may lie past what a ULID's 48-bit time holds: clamped (still one id per token).
  return encodeTime(Math.min(Math.max(0, Math.floor(timeMs)), TIME_MAX), 10) + random
}

/** The event a token stands for, as if a client had sent it. */
export function eventFromToken(payload: TokenPayload, eventId: string, ts: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventId, ts,
    adId: payload.adId, campaignId: payload.campaignId, publisherId: payload.publisherId,
    requestId: payload.requestId, impressionId: payload.impressionId,
    channel: payload.channel ?? 'web',
    ...extra,
  }
}
