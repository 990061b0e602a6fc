/**
 * Helpers for ad servers (Node): mint the signed pixel and click tokens the edge verifies
 * (`GET /v1/pixel.gif?t=`, `GET /c/<token>`), and sign requests. Token format: schemas/src/token.ts.
 */
import { mintToken, type TokenPayload } from '@adc/schemas'

export { signRequest, signingString, SIGNATURE_HEADERS } from '@adc/schemas/signing'
export type { TokenPayload } from '@adc/schemas'

export interface SigningKey {
  keyId: string
  secret: string
}

export type TokenFields = Omit<TokenPayload, 'exp' | 'url'> & {
  /** Expiry as Unix seconds; or give `ttlSeconds`. */
  exp?: number
  /** Lifetime from now when `exp` is absent. @default 86400 */
  ttlSeconds?: number
}

function expiry(fields: TokenFields, nowMs: number): number {
  return fields.exp ?? Math.floor(nowMs / 1000) + (fields.ttlSeconds ?? 86_400)
}

function payloadOf(fields: TokenFields, nowMs: number, url?: string): TokenPayload {
  const { ttlSeconds: _ttl, exp: _exp, ...rest } = fields
  return { ...rest, exp: expiry(fields, nowMs), ...(url === undefined ? {} : { url }) }
}

/** A pixel token: `${endpoint}/v1/pixel.gif?t=<token>` counts the impression when the pixel loads. */
export function mintPixelToken(fields: TokenFields, key: SigningKey, nowMs: number = Date.now()): Promise<string> {
  return mintToken(payloadOf(fields, nowMs), key.keyId, key.secret)
}

/** A click token carrying the landing URL: `${endpoint}/c/<token>` records the click and redirects. */
export function mintClickToken(fields: TokenFields & { url: string }, key: SigningKey, nowMs: number = Date.now()): Promise<string> {
  const { url, ...rest } = fields
  return mintToken(payloadOf(rest, nowMs, url), key.keyId, key.secret)
}

/** The URLs an ad server puts in its ad markup. */
export function pixelUrl(endpoint: string, token: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/pixel.gif?t=${encodeURIComponent(token)}`
}

export function clickUrl(endpoint: string, token: string): string {
  return `${endpoint.replace(/\/+$/, '')}/c/${encodeURIComponent(token)}`
}
