/**
 * The impression or click a pixel or redirect token stands for, with an event id derived from the token.
 */
import { ulidFromDigest, type EventType, type TokenPayload } from '@adc/schemas'

/**
 * A ULID event id derived from the token itself (`ulidFromDigest`): its time is `timeMs` (the
 * caller passes a time fixed by the token, its expiry less the dedupe window), its random part
 * comes from SHA-256 over `type US token`. Reloading a pixel sends the same token, so it gets the
 * same id and the same idempotency key: the impression is counted once. Because the id carries a
 * real time, every later stage that files keys by the id's time (the edge's dedupe shard and its
 * time-ordered table, core's delivery buckets) treats it like any client's ULID.
 */
export async function eventIdFromToken(token: string, type: EventType, timeMs: number): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${type}\u001f${token}`)))
  return ulidFromDigest(timeMs, digest)
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
