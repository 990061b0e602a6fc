/**
 * Everything a signed click or pixel token must pass before the edge acts on it.
 */
import { verifyToken, type TokenPayload, type PublisherConfig } from '@adc/schemas'
import type { TenantIndex } from '../tenants/tenants.js'

export type TokenCheck =
  | { ok: true; keyId: string; payload: TokenPayload; publisher: PublisherConfig }
  | { ok: false; code: 'invalid_token' | 'token_expired' | 'unknown_campaign'; message: string; keyId?: string }

/**
 * Everything a signed token must pass before the edge acts on it (pixel, click redirect, a click
 * event's `clickToken`): a valid signature by a *token* signing key of an active publisher (a
 * request signing key never verifies a token), not expired, naming the publisher that owns the key,
 * for a booked campaign.
 */
export async function checkToken(token: string, tenants: TenantIndex, nowSeconds: number): Promise<TokenCheck> {
  const verified = await verifyToken(token, (id) => tenants.secretFor(id), nowSeconds)
  if (!verified.ok) {
    const requestKey = verified.keyId !== undefined && tenants.signingKey(verified.keyId, 'request') !== undefined
    const message = requestKey ? 'the token names a request signing key; tokens are minted with a token signing key' : verified.message
    return verified.keyId === undefined ? { ok: false, code: verified.reason, message } : { ok: false, code: verified.reason, message, keyId: verified.keyId }
  }
  const { keyId, payload } = verified
  const publisher = tenants.signingKey(keyId, 'token')!.publisher
  if (publisher.id !== payload.publisherId) {
    return { ok: false, code: 'invalid_token', message: `key ${keyId} does not belong to publisher ${payload.publisherId}`, keyId }
  }
  if (!tenants.isBooked(payload.campaignId, payload.publisherId)) {
    return { ok: false, code: 'unknown_campaign', message: `campaign ${payload.campaignId} is not booked with publisher ${payload.publisherId}`, keyId }
  }
  return { ok: true, keyId, payload, publisher }
}
