/**
 * WebCrypto helpers of the edge: SHA-256 and HMAC in hex or base64url, and constant-time comparison of secrets.
 */
import { base64UrlEncode } from '@adc/schemas'

const enc = new TextEncoder()

export function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

export async function sha256Hex(data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const bytes = typeof data === 'string' ? enc.encode(data) : data
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
}

const keyCache = new Map<string, Promise<CryptoKey>>()

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret)
  if (!key) {
    key = crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
    if (keyCache.size > 1000) keyCache.clear()
    keyCache.set(secret, key)
  }
  return key
}

export async function hmacSha256(secret: string, message: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), enc.encode(message)))
}

export async function hmacBase64Url(secret: string, message: string): Promise<string> {
  return base64UrlEncode(await hmacSha256(secret, message))
}

/** Constant-time verify through WebCrypto, so a signature check leaks no timing. */
export async function hmacVerify(secret: string, message: string, signature: Uint8Array<ArrayBuffer>): Promise<boolean> {
  return crypto.subtle.verify('HMAC', await hmacKey(secret), signature, enc.encode(message))
}

/**
 * Constant-time equality of two secrets: SHA-256 first, so both sides have the same length and the
 * comparison (workerd's `crypto.subtle.timingSafeEqual`) leaks neither length nor content.
 */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([given, expected].map((s) => crypto.subtle.digest('SHA-256', enc.encode(s))))
  return crypto.subtle.timingSafeEqual(a!, b!)
}
