/**
 * The Kafka REST Proxy v2 produce body the edge sends, in the **binary embedded format**
 * (`application/vnd.kafka.binary.v2+json`): each record's key and value are base64 of the exact
 * bytes that go into Kafka. Confluent's REST proxy base64-decodes them into the record
 * (its NoSchemaRecordSerializer), and core's gateway does the same, so the key bytes are the raw
 * partition key (`partitionKey`, the impressionId) behind either proxy, and murmur2 over them
 * (`partitionFor`) places the record in the same partition whichever proxy is in front.
 *
 * The JSON embedded format (`application/vnd.kafka.json.v2+json`) is not used by the edge:
 * Confluent's proxy serialises a JSON key as JSON text (`abc` is stored as the 5 bytes `"abc"`),
 * which partitions differently from the raw key.
 */
export const BINARY_V2_CONTENT_TYPE = 'application/vnd.kafka.binary.v2+json'
export const JSON_V2_CONTENT_TYPE = 'application/vnd.kafka.json.v2+json'
/** The proxy's own answers (offsets, errors). */
export const V2_CONTENT_TYPE = 'application/vnd.kafka.v2+json'

export interface BinaryRecord {
  /** base64 of the key's bytes */
  key: string
  /** base64 of the value's bytes */
  value: string
  partition?: number
}

/** Standard base64 (RFC 4648 §4, padded) of bytes; chunked so large values stay linear. */
export function base64Encode(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}|[A-Za-z0-9+/]{3})?$/

/** Bytes of a standard base64 string (padding optional, as Guava's decoder accepts); null when it is not base64. */
export function base64Decode(text: string): Uint8Array | null {
  if (!BASE64.test(text)) return null
  const binary = atob(text)
  const out = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
  return out
}

/** One record in the binary embedded format: the key's UTF-8 bytes and the value as UTF-8 JSON text. */
export function binaryRecord(key: string, value: unknown): BinaryRecord {
  const utf8 = new TextEncoder()
  return { key: base64Encode(utf8.encode(key)), value: base64Encode(utf8.encode(JSON.stringify(value))) }
}
