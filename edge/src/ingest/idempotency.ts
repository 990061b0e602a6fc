/**
 * The delivery idempotency key of schemas/src/keys.ts, computed synchronously. Its input is a few
 * dozen bytes; WebCrypto's `digest` costs a promise and a native call per event, about 6 µs each
 * in workerd (a tenth of a 50-event batch's CPU), while @noble/hashes' SHA-256 (audited, plain
 * JavaScript) of one or two blocks takes about 1 µs. The property test beside this file holds it
 * to WebCrypto's answer.
 */
import type { EventType } from '@adc/schemas'
import { sha256 } from '@noble/hashes/sha2.js'

const encoder = new TextEncoder()
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'))

/** SHA-256 of bytes; the first `outBytes` bytes of the digest as lower-case hex. */
export function sha256HexPrefix(bytes: Uint8Array, outBytes = 32): string {
  const digest = sha256(bytes)
  let out = ''
  for (let i = 0; i < outBytes; i++) out += HEX[digest[i]!]
  return out
}

/** `idempotencyKey` of schemas: the first 16 bytes of SHA-256 over `publisherId US type US eventId`, as 32 hex characters. */
export function idempotencyKeyOf(publisherId: string, eventType: EventType, eventId: string): string {
  return sha256HexPrefix(encoder.encode(`${publisherId}\u001f${eventType}\u001f${eventId}`), 16)
}
