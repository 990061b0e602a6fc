/**
 * HMAC request signing, the one definition the edge checks and every SDK computes.
 *
 * Headers: `X-Adc-Key-Id` (signing key id), `X-Adc-Timestamp` (Unix seconds), `X-Adc-Signature`:
 * base64url (no padding) of HMAC-SHA256(secret, `${timestamp}.${METHOD}.${path}.${sha256hex(body)}`),
 * where `path` is the URL path without the query. Depends on WebCrypto only (no zod), so browser
 * and React Native bundles can import it without the schemas.
 */
export const SIGNATURE_HEADERS = { keyId: 'x-adc-key-id', timestamp: 'x-adc-timestamp', signature: 'x-adc-signature' } as const

/** How far the timestamp may be from the edge clock. */
export const SIGNATURE_WINDOW_SECONDS = 300

const enc = new TextEncoder()

function hex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

function base64Url(bytes: Uint8Array): string {
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export function signingString(timestamp: string | number, method: string, path: string, bodySha256Hex: string): string {
  return `${timestamp}.${method.toUpperCase()}.${path}.${bodySha256Hex}`
}

export async function sha256Hex(body: string | Uint8Array<ArrayBuffer>): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', typeof body === 'string' ? enc.encode(body) : body)))
}

/** The `X-Adc-Signature` value for one request. */
export async function signRequest(secret: string, timestamp: number, method: string, path: string, body: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  const mac = await crypto.subtle.sign('HMAC', key, enc.encode(signingString(timestamp, method, path, await sha256Hex(body))))
  return base64Url(new Uint8Array(mac))
}
