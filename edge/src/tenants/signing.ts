import { base64UrlDecode, SIGNATURE_WINDOW_SECONDS, signingString, type PublisherConfig } from '@adc/schemas'
import { hmacVerify } from '../crypto.js'
import type { RequestKeyScope, TenantIndex } from './tenants.js'

/**
 * The edge's check of HMAC request signing (the signing string and headers: schemas/src/signing.ts),
 * for SDKs and servers that cannot keep an API key secret in a header alone.
 *
 * Headers: `X-Adc-Key-Id` (signing key id), `X-Adc-Timestamp` (Unix seconds), `X-Adc-Signature`:
 * base64url (no padding) of HMAC-SHA256(secret, `${timestamp}.${METHOD}.${path}.${sha256hex(body)}`),
 * where `path` is the URL path without the query. A timestamp more than 5 minutes from the edge
 * clock is `signature_stale`; a signature seen before is `signature_replayed`.
 */
export { SIGNATURE_HEADERS, SIGNATURE_WINDOW_SECONDS } from '@adc/schemas'

export interface SignatureInput {
  keyId: string | undefined
  timestamp: string | undefined
  signature: string | undefined
  method: string
  path: string
  /** hex SHA-256 of the body */
  bodySha256: string
}

export type SignatureCheck =
  | { ok: true; publisher: PublisherConfig; keyId: string; scope: RequestKeyScope }
  | { ok: false; code: 'unauthorized' | 'signature_stale' | 'forbidden'; message: string }

export async function checkSignature(input: SignatureInput, tenants: TenantIndex, nowMs: number): Promise<SignatureCheck> {
  const { keyId, timestamp, signature } = input
  if (!keyId || !timestamp || !signature) return { ok: false, code: 'unauthorized', message: 'X-Adc-Key-Id, X-Adc-Timestamp and X-Adc-Signature are all required' }
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, code: 'unauthorized', message: 'X-Adc-Timestamp must be Unix seconds' }
  const owner = tenants.signingKey(keyId, 'request')
  if (!owner) {
    // A token signing key never signs requests (and a request key never mints tokens).
    const tokenKey = tenants.signingKey(keyId, 'token') !== undefined
    return { ok: false, code: 'unauthorized', message: tokenKey ? 'this key id is a token signing key; sign requests with a request signing key' : 'unknown signing key id' }
  }
  const sig = base64UrlDecode(signature)
  if (!sig || sig.length !== 32) return { ok: false, code: 'unauthorized', message: 'X-Adc-Signature must be base64url HMAC-SHA256' }
  const valid = await hmacVerify(owner.secret, signingString(timestamp, input.method, input.path, input.bodySha256), sig)
  if (!valid) return { ok: false, code: 'unauthorized', message: 'signature does not match' }
  // Checked after the HMAC so an unauthenticated caller learns nothing about the clock window.
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > SIGNATURE_WINDOW_SECONDS) {
    return { ok: false, code: 'signature_stale', message: `X-Adc-Timestamp is more than ${SIGNATURE_WINDOW_SECONDS} s from the edge clock` }
  }
  if (!owner.publisher.active) return { ok: false, code: 'forbidden', message: 'the publisher is not active' }
  // A request key without a scope is an app's (least trust); the index gives every one its scope.
  return { ok: true, publisher: owner.publisher, keyId, scope: owner.scope ?? 'app' }
}
