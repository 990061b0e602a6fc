/**
 * The impression or click a pixel or redirect token stands for, with an event id derived from the token.
 */
import { ulidFromDigest, type EventType, type TokenPayload } from '@adc/schemas'
import { hmacSha256 } from '../crypto.js'

/**
 * A ULID event id derived from the token (`ulidFromDigest`): its time is `timeMs` (the caller passes
 * a time fixed by the token, its expiry less the dedupe window), its random part comes from
 * HMAC-SHA256 under the secret of the token's own signing key over `event-id US type US token`.
 * Reloading a pixel sends the same token, so it gets the same id and the same idempotency key: the
 * impression is counted once. Keyed, not a plain hash of the token: the token sits in the page for anyone to read,
 * and an id anyone could compute could be sent first (with the page's public key) to make the pixel's
 * own impression a duplicate; only the edge and the ad server that mints the tokens hold the secret.
 * Because the id carries a real time, every later stage that files keys by the id's time (the edge's
 * dedupe shard and its time-ordered table, core's delivery buckets) treats it like any client's ULID.
 */
export async function eventIdFromToken(token: string, type: EventType, timeMs: number, secret: string): Promise<string> {
  return ulidFromDigest(timeMs, await hmacSha256(secret, `event-id\u001f${type}\u001f${token}`))
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
