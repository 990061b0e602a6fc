import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { z } from 'zod'
import { base64Decode, BINARY_V2_CONTENT_TYPE, JSON_V2_CONTENT_TYPE, partitionFor, V2_CONTENT_TYPE, type ReasonCode } from '@adc/schemas'
import type { Log } from '../log/log.js'
import { AppendCoalescer } from './append-coalescer.js'
import { recordValueTexts } from './raw-values.js'

/**
 * The produce side of the Kafka REST Proxy v2 API (Confluent's wire format), over the `Log` port.
 * The edge speaks this API in every mode; in the embedded default core serves it, in scale-out a
 * Confluent REST Proxy in front of Kafka does, and the same edge code works against either.
 *
 * Error bodies follow Confluent's: `{ error_code, message }`, where error_code is the HTTP status
 * followed by two digits (40401 unknown topic, 42201 invalid body, 42202 partition out of range,
 * 42203 partition not the key's, 50001 produce failed); a refusal of this gateway's own rules also
 * names its `reason` (schemas/src/reasons.ts).
 *
 * A record's partition is always its key's (`partitionFor`, Kafka's murmur2): an explicit
 * `partition` is taken only when it is that one. The processor's dedupe and join state is per
 * partition and assumes every event of an impression sits in the partition its id hashes to, so a
 * copy of an event placed in another partition would be counted a second time.
 */
export interface RestProxyOptions {
  log: Log
  /** Topics that may be produced to; others answer 404 like an unknown topic. */
  topics: readonly string[]
  /** Largest accepted body in bytes. @default 8 MiB */
  maxBodyBytes?: number
}

const V2_JSON = JSON_V2_CONTENT_TYPE
const V2 = V2_CONTENT_TYPE

/**
 * Embedded formats, as Confluent's v2 produce endpoint takes them (content types it does not
 * consume answer 415). Both end in the same record bytes as Confluent's NoSchemaRecordSerializer:
 * - binary: key and value are base64 of the record's bytes (what the edge sends);
 * - json: key and value are JSON, stored as their JSON text, so a string key `abc` is the 5 bytes
 *   `"abc"` and partitions by murmur2 over them, exactly as behind Confluent's proxy.
 */
type EmbeddedFormat = 'binary' | 'json'
const FORMATS: Record<string, EmbeddedFormat> = { [BINARY_V2_CONTENT_TYPE]: 'binary', [V2_JSON]: 'json' }

const jsonBodySchema = z.object({
  records: z.array(z.object({
    key: z.unknown().optional(),
    value: z.unknown(),
    partition: z.number().int().nonnegative().optional(),
  })).min(1),
})

const binaryBodySchema = z.object({
  records: z.array(z.object({
    key: z.string().nullable().optional(),
    value: z.string(),
    partition: z.number().int().nonnegative().optional(),
  })).min(1),
})

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** base64 → UTF-8 text; null when the text is not base64 or the bytes are not UTF-8 (the Log port stores text). */
function decodeBinary(text: string): string | null {
  const bytes = base64Decode(text)
  if (bytes === null) return null
  try {
    return utf8.decode(bytes)
  } catch {
    return null
  }
}

interface LogRecord {
  key: string
  value: string
  partition?: number
}

/** The records as the log stores them, or the index and message of the first one that cannot be. */
function toLogRecords(format: EmbeddedFormat, json: unknown, text: string): { records: LogRecord[] } | { error: string } {
  if (format === 'binary') {
    const body = binaryBodySchema.safeParse(json)
    if (!body.success) return { error: invalid(body.error.issues[0]) }
    const records: LogRecord[] = []
    for (const [i, r] of body.data.records.entries()) {
      const key = r.key === null || r.key === undefined ? '' : decodeBinary(r.key)
      const value = decodeBinary(r.value)
      if (key === null) return { error: `records.${i}.key is not base64 of UTF-8 bytes.` }
      if (value === null) return { error: `records.${i}.value is not base64 of UTF-8 bytes.` }
      records.push({ key, value, ...(r.partition !== undefined ? { partition: r.partition } : {}) })
    }
    return { records }
  }
  const body = jsonBodySchema.safeParse(json)
  if (!body.success) return { error: invalid(body.error.issues[0]) }
  // Each value as the client wrote it (JSON.parse accepted it above), not parsed and re-stringified.
  const texts = recordValueTexts(text)
  const raw = texts?.length === body.data.records.length ? texts : undefined
  return {
    records: body.data.records.map((r, i) => ({
      key: r.key === null || r.key === undefined ? '' : JSON.stringify(r.key),
      value: raw?.[i] ?? JSON.stringify(r.value ?? null),
      ...(r.partition !== undefined ? { partition: r.partition } : {}),
    })),
  }
}

function invalid(issue: z.core.$ZodIssue | undefined): string {
  return `Invalid produce request at ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`
}

function proxyError(status: 404 | 413 | 415 | 422 | 500, code: number, message: string, reason?: ReasonCode) {
  return new Response(JSON.stringify({ error_code: code, message, ...(reason ? { reason } : {}) }), { status, headers: { 'content-type': V2 } })
}

/** The first record whose explicit partition is out of range or not its key's, with the answer to give. */
function misplaced(records: readonly LogRecord[], partitions: number): Response | undefined {
  for (const [i, r] of records.entries()) {
    if (r.partition === undefined) continue
    if (r.partition >= partitions) return proxyError(422, 42202, `records.${i}.partition is out of range (topic has ${partitions}).`)
    const own = partitionFor(r.key, partitions)
    if (r.partition !== own) {
      return proxyError(422, 42203, `records.${i}.partition is ${r.partition}, but its key's partition is ${own}: a record goes to its key's partition only.`, 'partition_mismatch')
    }
  }
  return undefined
}

export function createRestProxy({ log, topics, maxBodyBytes = 8 * 1024 * 1024 }: RestProxyOptions): Hono {
  const app = new Hono()
  const known = new Set(topics)
  // Concurrent produce calls share one append (one LMDB transaction, one Kafka request).
  const appender = new AppendCoalescer(log)

  app.get('/topics', (c) => c.json([...known]))

  app.get('/topics/:topic', async (c) => {
    const topic = c.req.param('topic')
    if (!known.has(topic)) return proxyError(404, 40401, 'Topic not found.')
    const n = await log.partitionCount(topic)
    return c.json({ name: topic, partitions: Array.from({ length: n }, (_, partition) => ({ partition })) })
  })

  // Counted as the body streams in (a declared Content-Length over it is refused before reading):
  // a body sent without one is never read whole before it is found too large.
  app.post('/topics/:topic', bodyLimit({ maxSize: maxBodyBytes, onError: () => proxyError(413, 41301, 'Request body too large.') }), async function produce(c) {
    const topic = c.req.param('topic')
    if (!known.has(topic)) return proxyError(404, 40401, 'Topic not found.')
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
    const format = FORMATS[type]
    if (!format) return proxyError(415, 41501, `Content-Type must be ${BINARY_V2_CONTENT_TYPE} or ${V2_JSON}.`)
    const text = await c.req.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return proxyError(422, 42201, 'Request body is not valid JSON.')
    }
    const parsed = toLogRecords(format, json, text)
    if ('error' in parsed) return proxyError(422, 42201, parsed.error)
    const { records } = parsed
    let partitions: number
    try {
      partitions = await log.partitionCount(topic)
    } catch (err) {
      return proxyError(500, 50001, `Produce failed: ${(err as Error).message}`)
    }
    const refused = misplaced(records, partitions)
    if (refused) return refused

    try {
      const results = await appender.append(topic, records)
      return c.json({
        offsets: results.map((r) => ({ partition: r.partition, offset: r.offset, error_code: null, error: null })),
        key_schema_id: null,
        value_schema_id: null,
      }, 200, { 'content-type': V2 })
    } catch (err) {
      // The append is all-or-nothing: none of the records is durable, so the caller retries them all.
      return proxyError(500, 50001, `Produce failed: ${(err as Error).message}`)
    }
  })

  return app
}
