import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BINARY_V2_CONTENT_TYPE, binaryRecord, JSON_V2_CONTENT_TYPE, murmur2, partitionFor } from '@adc/schemas'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log, LogRecord } from '../log/log.js'
import { createRestProxy } from './rest-proxy.js'

/**
 * One wire format whichever proxy is in front: core's gateway must write the same record bytes,
 * and so choose the same partition, as Confluent's REST proxy does for the same request.
 *
 * Confluent's v2 produce (kafka-rest, NoSchemaRecordSerializer) turns a request record into Kafka
 * bytes this way: the binary embedded format base64-decodes key and value; the JSON embedded format
 * writes their JSON text (KafkaJsonSerializer), so the string key `somekey` becomes `"somekey"`. Its
 * producer (ByteArraySerializer, default partitioner) then places a keyed record by
 * toPositive(murmur2(key bytes)) % partitions. `confluentKeyBytes` models exactly that.
 */
const PARTITIONS = 4
let dir: string
let log: Log

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'adc-wire-'))
  log = await createEmbeddedLog({ dir })
  await log.ensureTopic('ad-events', PARTITIONS)
})
afterEach(async () => {
  await log.close()
  rmSync(dir, { recursive: true, force: true })
})

function confluentKeyBytes(format: 'binary' | 'json', key: unknown): Buffer {
  return format === 'binary' ? Buffer.from(key as string, 'base64') : Buffer.from(JSON.stringify(key), 'utf8')
}

/** Kafka's default partitioner over key bytes (keys here are UTF-8, which murmur2 takes as text). */
function kafkaPartition(keyBytes: Buffer): number {
  return (murmur2(keyBytes.toString('utf8')) & 0x7fffffff) % PARTITIONS
}

async function readAll(): Promise<LogRecord[]> {
  const seen: LogRecord[] = []
  const ends = await log.endOffsets('ad-events')
  const total = [...ends.values()].reduce((a, b) => a + b, 0)
  const consumer = await log.consume({
    groupId: `g-${Math.random()}`, topic: 'ad-events',
    onBatch: async (batch, ctx) => { for (const r of batch.records) { seen.push(r); ctx.resolveOffset(r.offset) } await ctx.commit() },
  })
  for (let i = 0; i < 200 && seen.length < total; i++) await new Promise((r) => setTimeout(r, 20))
  await consumer.stop()
  return seen
}

function post(app: ReturnType<typeof createRestProxy>, type: string, body: unknown) {
  return app.request('/topics/ad-events', { method: 'POST', headers: { 'content-type': type }, body: JSON.stringify(body) })
}

describe("core's gateway writes the bytes Confluent's REST proxy writes", () => {
  it("takes Confluent's documented binary produce request: base64 key and value bytes, a fixed partition taken when it is the key's (the empty key's is 1 of 4)", async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    // The shape of Confluent's API reference example for the binary embedded format.
    const records = [
      { key: Buffer.from('key').toString('base64'), value: Buffer.from('"confluent"').toString('base64') },
      { value: Buffer.from('"kafka"').toString('base64'), partition: 1 },
      { value: Buffer.from('"logs"').toString('base64') },
    ]
    const res = await post(app, BINARY_V2_CONTENT_TYPE, { records })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/vnd.kafka.v2+json')
    const body = await res.json() as { offsets: { partition: number; offset: number }[]; key_schema_id: null; value_schema_id: null }
    expect(body).toMatchObject({ key_schema_id: null, value_schema_id: null })
    expect(body.offsets).toHaveLength(3)
    expect(body.offsets[0]!.partition).toBe(kafkaPartition(confluentKeyBytes('binary', records[0]!.key)))
    expect(body.offsets[1]!.partition).toBe(1)
    const stored = await readAll()
    const first = stored.find((r) => r.partition === body.offsets[0]!.partition && r.offset === body.offsets[0]!.offset)
    expect(first).toMatchObject({ key: 'key', value: '"confluent"' })
  })

  it("takes Confluent's documented JSON produce request and stores a string key as its JSON text, as Confluent does", async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    const records = [{ key: 'somekey', value: { foo: 'bar' } }, { value: ['foo', 'bar'], partition: 1 }, { value: 53.5 }]
    const res = await post(app, JSON_V2_CONTENT_TYPE, { records })
    expect(res.status).toBe(200)
    const body = await res.json() as { offsets: { partition: number; offset: number }[] }
    expect(body.offsets[0]!.partition).toBe(kafkaPartition(confluentKeyBytes('json', 'somekey')))
    const stored = await readAll()
    const first = stored.find((r) => r.partition === body.offsets[0]!.partition && r.offset === body.offsets[0]!.offset)
    expect(first).toMatchObject({ key: '"somekey"', value: '{"foo":"bar"}' })
  })

  it("puts the edge's records on partitionFor(impressionId) behind either proxy", async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    const ids = Array.from({ length: 40 }, (_, i) => `imp_${i.toString(36)}_${'x'.repeat(i % 5)}`)
    // What the edge sends (edge/src/ingest/forwarder.ts produceBody): the binary embedded format.
    const records = ids.map((id) => binaryRecord(id, { type: 'impression', impressionId: id }))
    const res = await post(app, BINARY_V2_CONTENT_TYPE, { records })
    expect(res.status).toBe(200)
    const { offsets } = await res.json() as { offsets: { partition: number }[] }
    ids.forEach((id, i) => {
      const confluent = kafkaPartition(confluentKeyBytes('binary', records[i]!.key))
      expect(offsets[i]!.partition, id).toBe(confluent)
      expect(offsets[i]!.partition, id).toBe(partitionFor(id, PARTITIONS))
    })
    // The JSON embedded format would have placed some of them elsewhere behind Confluent's proxy.
    const moved = ids.filter((id) => kafkaPartition(confluentKeyBytes('json', id)) !== partitionFor(id, PARTITIONS))
    expect(moved.length).toBeGreaterThan(0)
    const stored = await readAll()
    expect(stored.map((r) => JSON.parse(r.value).impressionId).sort()).toEqual([...ids].sort())
    for (const r of stored) expect(r.key).toBe(JSON.parse(r.value).impressionId)
  })

  it('refuses a binary record that is not base64 of UTF-8 bytes with 422, and other content types with 415', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    expect((await post(app, BINARY_V2_CONTENT_TYPE, { records: [{ key: 'not base64!', value: 'e30=' }] })).status).toBe(422)
    expect((await post(app, BINARY_V2_CONTENT_TYPE, { records: [{ key: 'a2V5', value: Buffer.from([0xff, 0xfe]).toString('base64') }] })).status).toBe(422)
    expect((await post(app, BINARY_V2_CONTENT_TYPE, { records: [{ key: 'a2V5', value: { not: 'a string' } }] })).status).toBe(422)
    expect((await post(app, 'application/vnd.kafka.v2+json', { records: [{ key: 'k', value: 1 }] })).status).toBe(415)
    const ends = await log.endOffsets('ad-events')
    expect([...ends.values()].reduce((a, b) => a + b, 0)).toBe(0)
  })
})
