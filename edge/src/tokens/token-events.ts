/**
 * The impression or click a pixel or redirect token stands for, with an event id derived from the token.
 */
import type { EventType, TokenPayload } from '@adc/schemas'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/**
 * A ULID-shaped event id derived from the token itself (SHA-256, 130 bits in Crockford base32,
 * first character 0-7 as a ULID's must be). Reloading a pixel sends the same token, so it gets the
 * same id and the same idempotency key: the impression is counted once.
 */
export async function eventIdFromToken(token: string, type: EventType): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${type}\u001f${token}`)))
  let bits = ''
  for (const b of digest.subarray(0, 17)) bits += b.toString(2).padStart(8, '0')
  let out = ''
  for (let i = 0; i < 26; i++) {
    const chunk = i === 0 ? bits.slice(0, 3) : bits.slice(3 + (i - 1) * 5, 3 + i * 5)
    out += CROCKFORD[parseInt(chunk, 2)]
  }
  return out
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
