import { z } from 'zod'
import { channelSchema } from './events.js'
import { idSchema } from './ids.js'

/**
 * Signed tokens for the pixel (`GET /v1/pixel.gif?t=`) and the click redirect (`GET /c/<token>`).
 *
 * Format: `v1.<keyId>.<payload>.<sig>`
 * - `keyId`: the publisher's signing key id (`[A-Za-z0-9_-]{1,64}`), so secrets can rotate.
 * - `payload`: base64url without padding of the UTF-8 JSON payload (fields below).
 * - `sig`: base64url without padding of HMAC-SHA256(secret, ASCII `v1.<keyId>.<payload>`).
 *
 * Minting in any language is three lines; in Python:
 * ```
 * p = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b'=').decode()
 * s = base64.urlsafe_b64encode(hmac.new(secret, f'v1.{kid}.{p}'.encode(), 'sha256').digest()).rstrip(b'=').decode()
 * token = f'v1.{kid}.{p}.{s}'
 * ```
 * Uses WebCrypto only, so it runs in Workers, browsers and Node.
 */
export const TOKEN_VERSION = 'v1'
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
/** Longest token accepted; longer input is refused before any decoding. */
export const MAX_TOKEN_LENGTH = 4096

const httpUrl = z.string().max(2048).refine((s) => {
  try {
    const u = new URL(s)
    return u.protocol === 'http:' || u.protocol === 'https:'
  } catch {
    return false
  }
}, 'must be an absolute http or https URL')

export const tokenPayloadSchema = z.object({
  impressionId: idSchema,
  campaignId: idSchema,
  adId: idSchema,
  publisherId: idSchema,
  requestId: idSchema,
  /** Expiry, Unix seconds. */
  exp: z.number().int().positive(),
  /** Click tokens: the landing URL the redirect goes to. */
  url: httpUrl.optional(),
  channel: channelSchema.optional(),
})

export type TokenPayload = z.infer<typeof tokenPayloadSchema>

export type TokenFailure = 'invalid_token' | 'token_expired'

export type VerifyResult =
  | { ok: true; keyId: string; payload: TokenPayload }
  | { ok: false; reason: TokenFailure; message: string; keyId?: string }

const B64URL = /^[A-Za-z0-9_-]*$/

export function base64UrlEncode(bytes: Uint8Array): string {
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Decodes unpadded base64url; returns null for anything else (padding, bad characters, bad length). */
export function base64UrlDecode(text: string): Uint8Array<ArrayBuffer> | null {
  if (!B64URL.test(text) || text.length % 4 === 1) return null
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4)
  let bin: string
  try {
    bin = atob(b64)
  } catch {
    return null
  }
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  // Reject non-canonical encodings (unused trailing bits set), so one token has exactly one spelling.
  if (base64UrlEncode(out) !== text) return null
  return out
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
}

/** Signs a payload with the secret of `keyId`. The payload is validated first; a bad one throws. */
export async function mintToken(payload: TokenPayload, keyId: string, secret: string): Promise<string> {
  if (!KEY_ID_PATTERN.test(keyId)) throw new TypeError('keyId must match [A-Za-z0-9_-]{1,64}')
  const valid = tokenPayloadSchema.parse(payload)
  const body = base64UrlEncode(new TextEncoder().encode(JSON.stringify(valid)))
  const signed = `${TOKEN_VERSION}.${keyId}.${body}`
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), new TextEncoder().encode(signed)))
  return `${signed}.${base64UrlEncode(sig)}`
}

/**
 * Verifies a token: shape, key id known to `secretFor`, signature (WebCrypto's constant-time
 * verify), payload schema, then expiry. Never throws on bad input.
 */
export async function verifyToken(
  token: string,
  secretFor: (keyId: string) => string | undefined | Promise<string | undefined>,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Promise<VerifyResult> {
  const fail = (message: string, keyId?: string): VerifyResult =>
    keyId === undefined ? { ok: false, reason: 'invalid_token', message } : { ok: false, reason: 'invalid_token', message, keyId }
  if (typeof token !== 'string' || token.length === 0) return fail('token is missing')
  if (token.length > MAX_TOKEN_LENGTH) return fail('token is too long')
  const parts = token.split('.')
  if (parts.length !== 4) return fail('token must be v1.<keyId>.<payload>.<sig>')
  const [version, keyId, body, sigText] = parts as [string, string, string, string]
  if (version !== TOKEN_VERSION) return fail('unknown token version')
  if (!KEY_ID_PATTERN.test(keyId)) return fail('malformed key id')
  const sig = base64UrlDecode(sigText)
  const bodyBytes = base64UrlDecode(body)
  if (sig === null || bodyBytes === null) return fail('token parts are not base64url', keyId)
  if (sig.length !== 32) return fail('signature has the wrong length', keyId)
  const secret = await secretFor(keyId)
  if (secret === undefined) return fail('unknown key id', keyId)
  const ok = await crypto.subtle.verify('HMAC', await hmacKey(secret), sig, new TextEncoder().encode(`${version}.${keyId}.${body}`))
  if (!ok) return fail('signature does not match', keyId)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bodyBytes))
  } catch {
    return fail('payload is not UTF-8 JSON', keyId)
  }
  const parsed = tokenPayloadSchema.safeParse(json)
  if (!parsed.success) return fail(`payload is invalid: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim(), keyId)
  if (parsed.data.exp <= nowSeconds) return { ok: false, reason: 'token_expired', message: 'token has expired', keyId }
  return { ok: true, keyId, payload: parsed.data }
}
