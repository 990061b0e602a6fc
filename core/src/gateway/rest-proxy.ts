import { Hono } from 'hono'
import { z } from 'zod'
import type { Log } from '../log/log.js'
import { AppendCoalescer } from './append-coalescer.js'
import { recordValueTexts } from './raw-values.js'

/**
 * The produce side of the Kafka REST Proxy v2 API (Confluent's wire format), over the `Log` port.
 * The edge speaks this API in every mode; in the embedded default core serves it, in scale-out a
 * Confluent REST Proxy in front of Kafka does, and the same edge code works against either.
 *
 * Error bodies follow Confluent's: `{ error_code, message }`, where error_code is the HTTP status
 * followed by two digits (40401 unknown topic, 42201 invalid body, 50001 produce failed).
 */
export interface RestProxyOptions {
  log: Log
  /** Topics that may be produced to; others answer 404 like an unknown topic. */
  topics: readonly string[]
  /** Largest accepted body in bytes. @default 8 MiB */
  maxBodyBytes?: number
}

const V2_JSON = 'application/vnd.kafka.json.v2+json'
const ACCEPTED_TYPES = [V2_JSON, 'application/vnd.kafka.v2+json', 'application/json']

const produceBodySchema = z.object({
  records: z.array(z.object({
    key: z.union([z.string(), z.number(), z.record(z.string(), z.unknown())]).nullable().optional(),
    value: z.unknown(),
    partition: z.number().int().nonnegative().optional(),
  })).min(1),
})

function proxyError(status: 404 | 413 | 415 | 422 | 500, code: number, message: string) {
  return new Response(JSON.stringify({ error_code: code, message }), { status, headers: { 'content-type': V2_JSON } })
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

  app.post('/topics/:topic', async function produce(c) {
    const topic = c.req.param('topic')
    if (!known.has(topic)) return proxyError(404, 40401, 'Topic not found.')
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
    if (!ACCEPTED_TYPES.includes(type)) return proxyError(415, 41501, `Content-Type must be ${V2_JSON}.`)
    const declared = Number(c.req.header('content-length') ?? '0')
    if (declared > maxBodyBytes) return proxyError(413, 41301, 'Request body too large.')
    const text = await c.req.text()
    if (text.length > maxBodyBytes) return proxyError(413, 41301, 'Request body too large.')
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return proxyError(422, 42201, 'Request body is not valid JSON.')
    }
    const body = produceBodySchema.safeParse(json)
    if (!body.success) {
      const issue = body.error.issues[0]
      return proxyError(422, 42201, `Invalid produce request at ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`)
    }
    let partitions: number
    try {
      partitions = await log.partitionCount(topic)
    } catch (err) {
      return proxyError(500, 50001, `Produce failed: ${(err as Error).message}`)
    }
    const badPartition = body.data.records.findIndex((r) => r.partition !== undefined && r.partition >= partitions)
    if (badPartition >= 0) return proxyError(422, 42202, `records.${badPartition}.partition is out of range (topic has ${partitions}).`)

    // Each value as the client wrote it (JSON.parse accepted it above), not parsed and re-stringified.
    const texts = recordValueTexts(text)
    const raw = texts?.length === body.data.records.length ? texts : undefined
    const records = body.data.records.map((r, i) => ({
      key: r.key === null || r.key === undefined ? '' : typeof r.key === 'string' ? r.key : JSON.stringify(r.key),
      value: raw?.[i] ?? JSON.stringify(r.value ?? null),
      ...(r.partition !== undefined ? { partition: r.partition } : {}),
    }))
    try {
      const results = await appender.append(topic, records)
      return c.json({
        offsets: results.map((r) => ({ partition: r.partition, offset: r.offset, error_code: null, error: null })),
        key_schema_id: null,
        value_schema_id: null,
      }, 200, { 'content-type': V2_JSON })
    } catch (err) {
      // The append is all-or-nothing: none of the records is durable, so the caller retries them all.
      return proxyError(500, 50001, `Produce failed: ${(err as Error).message}`)
    }
  })

  return app
}
