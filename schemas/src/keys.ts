import type { EventType } from './events.js'

const SEP = '\u001f'

function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

/**
 * Delivery idempotency key: the first 16 bytes of SHA-256 over the UTF-8 string
 * `publisherId US eventType US eventId` (US = U+001F, which ids cannot contain), as 32 hex chars.
 * A retry of the same send carries the same key. Uses WebCrypto so it runs in Workers and Node.
 */
export async function idempotencyKey(publisherId: string, eventType: EventType, eventId: string): Promise<string> {
  const data = new TextEncoder().encode([publisherId, eventType, eventId].join(SEP))
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data))
  return toHex(digest.subarray(0, 16))
}

/** The log partition key: clicks and their impression share `impressionId`, so they meet in one partition. */
export function partitionKey(event: { impressionId: string }): string {
  return event.impressionId
}

/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`), so the embedded log, kafkajs's default
 * partitioner and Java producers put a key in the same partition.
 */
export function murmur2(key: string): number {
  const data = new TextEncoder().encode(key)
  const length = data.length
  const seed = 0x9747b28c
  const m = 0x5bd1e995
  const r = 24
  let h = seed ^ length
  const length4 = Math.floor(length / 4)
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4
    let k = (data[i4]! & 0xff) + ((data[i4 + 1]! & 0xff) << 8) + ((data[i4 + 2]! & 0xff) << 16) + ((data[i4 + 3]! & 0xff) << 24)
    k = Math.imul(k, m)
    k ^= k >>> r
    k = Math.imul(k, m)
    h = Math.imul(h, m)
    h ^= k
  }
  const rem = length % 4
  const base = length & ~3
  if (rem === 3) h ^= (data[base + 2]! & 0xff) << 16
  if (rem >= 2) h ^= (data[base + 1]! & 0xff) << 8
  if (rem >= 1) {
    h ^= data[base]! & 0xff
    h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

/** Partition for a key, as Kafka's default partitioner computes it: toPositive(murmur2(key)) % n. */
export function partitionFor(key: string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions
}
