import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BINARY_V2_CONTENT_TYPE, binaryRecord, partitionFor } from '@adc/schemas'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log } from '../log/log.js'
import { createRestProxy } from './rest-proxy.js'

const V2 = 'application/vnd.kafka.json.v2+json'
let dir: string
let log: Log

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'adc-gateway-'))
  log = await createEmbeddedLog({ dir })
  await log.ensureTopic('ad-events', 4)
})
afterEach(async () => {
  await log.close()
  rmSync(dir, { recursive: true, force: true })
})

/** What one partition holds, read straight from the embedded log. */
const stored_ = (partition: number) =>
  (log as unknown as { readBatch(t: string, p: number, from: number, end: number, limit: number): { value: string }[] }).readBatch('ad-events', partition, 0, 1000, 1000)

function produce(app: ReturnType<typeof createRestProxy>, topic: string, body: unknown, type = V2) {
  return app.request(`/topics/${topic}`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) })
}

describe('REST proxy v2 produce', () => {
  it('appends every record durably, partitioned by key, and answers Confluent-shaped offsets', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    // The edge's format: binary embedded (base64 key bytes), so the key is the raw impression id.
    const records = Array.from({ length: 20 }, (_, i) => binaryRecord(`imp_${i}`, { n: i }))
    const res = await produce(app, 'ad-events', { records }, BINARY_V2_CONTENT_TYPE)
    expect(res.status).toBe(200)
    const body = await res.json() as { offsets: { partition: number; offset: number; error_code: null }[] }
    expect(body.offsets).toHaveLength(20)
    body.offsets.forEach((o, i) => {
      expect(o.partition).toBe(partitionFor(`imp_${i}`, 4))
      expect(o.error_code).toBeNull()
    })
    const ends = await log.endOffsets('ad-events')
    expect([...ends.values()].reduce((a, b) => a + b, 0)).toBe(20)
  })

  it('stores the value as JSON text that reads back equal', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    await produce(app, 'ad-events', { records: [{ key: 'k', value: { a: [1, 'two', null] } }] })
    const seen: string[] = []
    const consumer = await log.consume({
      groupId: 'g', topic: 'ad-events',
      onBatch: async (batch, ctx) => { for (const r of batch.records) { seen.push(r.value); ctx.resolveOffset(r.offset) } await ctx.commit() },
    })
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
    await consumer.stop()
    expect(seen.map((v) => JSON.parse(v))).toEqual([{ a: [1, 'two', null] }])
  })

  it('answers 404 40401 for an unknown topic and appends nothing', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    const res = await produce(app, 'nope', { records: [{ key: 'k', value: 1 }] })
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ error_code: 40401 })
  })

  it('answers 422 for bad JSON and bad shapes, 415 for other content types', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    expect((await produce(app, 'ad-events', '{"records":')).status).toBe(422)
    expect((await produce(app, 'ad-events', { records: [] })).status).toBe(422)
    expect((await produce(app, 'ad-events', { records: [{ key: 'k', value: 1, partition: 99 }] })).status).toBe(422)
    expect((await produce(app, 'ad-events', { records: [{ key: 'k', value: 1 }] }, 'text/plain')).status).toBe(415)
    const ends = await log.endOffsets('ad-events')
    expect([...ends.values()].reduce((a, b) => a + b, 0)).toBe(0)
  })

  it("refuses a record whose explicit partition is not its key's (422 42203 partition_mismatch), appending nothing", async () => {
    // Every event of one impression must sit in partitionFor(impressionId): the processor's dedupe
    // and join state is per partition, so a copy placed elsewhere would be counted a second time.
    const app = createRestProxy({ log, topics: ['ad-events'] })
    const own = partitionFor('imp_1', 4)
    const elsewhere = (own + 1) % 4
    const copy = { ...binaryRecord('imp_1', { n: 1 }), partition: elsewhere }
    const res = await produce(app, 'ad-events', { records: [binaryRecord('imp_2', { n: 2 }), copy] }, BINARY_V2_CONTENT_TYPE)
    expect(res.status).toBe(422)
    expect(res.headers.get('content-type')).toBe('application/vnd.kafka.v2+json')
    expect(await res.json()).toMatchObject({ error_code: 42203, reason: 'partition_mismatch' })
    // The JSON embedded format too, and a keyless record (placed as the empty key).
    const json = await produce(app, 'ad-events', { records: [{ key: 'k', value: 1, partition: (partitionFor('"k"', 4) + 1) % 4 }] })
    expect(json.status).toBe(422)
    const keyless = await produce(app, 'ad-events', { records: [{ value: 1, partition: (partitionFor('', 4) + 1) % 4 }] })
    expect(keyless.status).toBe(422)
    const ends = await log.endOffsets('ad-events')
    expect([...ends.values()].reduce((a, b) => a + b, 0)).toBe(0)
    // A partition that agrees with the key is taken as the key would have placed it.
    const agreeing = await produce(app, 'ad-events', { records: [{ ...binaryRecord('imp_1', { n: 1 }), partition: own }] }, BINARY_V2_CONTENT_TYPE)
    expect(agreeing.status).toBe(200)
    expect(await agreeing.json()).toMatchObject({ offsets: [{ partition: own, offset: 0 }] })
  })

  it('answers 413 for a body over the limit', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'], maxBodyBytes: 100 })
    const res = await produce(app, 'ad-events', { records: [{ key: 'k', value: 'x'.repeat(200) }] })
    expect(res.status).toBe(413)
    expect(await res.json()).toMatchObject({ error_code: 41301 })
  })

  it('answers 413 for a body without Content-Length as soon as it passes the limit, without reading the rest', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'], maxBodyBytes: 64 * 1024 })
    const chunk = new TextEncoder().encode(' '.repeat(16 * 1024))
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 1024 * 1024) return controller.close()
        sent += chunk.length
        controller.enqueue(chunk)
      },
    })
    const res = await app.request('/topics/ad-events', { method: 'POST', headers: { 'content-type': 'application/vnd.kafka.json.v2+json' }, body, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(413)
    expect(await res.json()).toMatchObject({ error_code: 41301 })
    expect(sent).toBeLessThan(1024 * 1024)
    const ends = await log.endOffsets('ad-events')
    expect([...ends.values()].reduce((a, b) => a + b, 0)).toBe(0)
  })

  it('answers 500 50001 when the log refuses, so the caller retries', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    await log.close()
    const res = await produce(app, 'ad-events', { records: [{ key: 'k', value: 1 }] })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ error_code: 50001 })
    log = await createEmbeddedLog({ dir })
  })

  it('stores each value as the client wrote it, without parsing and re-serialising it', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    const body = '{"records":[{"key":"k1","value":{"b": 1,  "a":"\\u00e9"}},{"key":"k2","value":[1, 2]}]}'
    expect((await produce(app, 'ad-events', body)).status).toBe(200)
    const stored: string[] = []
    for (let p = 0; p < 4; p++) for (const r of stored_(p)) stored.push(r.value)
    expect(stored.sort()).toEqual(['[1, 2]', '{"b": 1,  "a":"\\u00e9"}'])
  })

  it('folds produce calls that arrive during an append into one append, each answered with its own offsets', async () => {
    let appends = 0
    const counting: Log = Object.assign(Object.create(log) as Log, {
      append: (topic: string, records: Parameters<Log['append']>[1]) => {
        appends++
        return log.append(topic, records)
      },
    })
    const app = createRestProxy({ log: counting, topics: ['ad-events'] })
    const calls = Array.from({ length: 6 }, (_, c) => produce(app, 'ad-events', { records: Array.from({ length: 5 }, (_, i) => ({ key: 'same', value: { c, i } })) }))
    const bodies = await Promise.all(calls.map(async (r) => (await r).json() as Promise<{ offsets: { partition: number; offset: number }[] }>))
    expect(appends).toBeLessThan(6)
    const offsets = bodies.flatMap((b) => b.offsets.map((o) => o.offset))
    expect(new Set(offsets).size).toBe(30)
    for (const b of bodies) expect(b.offsets.map((o) => o.offset)).toEqual(Array.from({ length: 5 }, (_, i) => b.offsets[0]!.offset + i))
    // The JSON embedded format keeps a string key as its JSON text, as Confluent's proxy does.
    const p = partitionFor(JSON.stringify('same'), 4)
    const stored = (stored_(p)).map((r) => JSON.parse(r.value) as { c: number; i: number })
    for (const b of bodies) {
      const c = stored[b.offsets[0]!.offset]!.c
      expect(b.offsets.map((o) => stored[o.offset])).toEqual(Array.from({ length: 5 }, (_, i) => ({ c, i })))
    }
  })
})
