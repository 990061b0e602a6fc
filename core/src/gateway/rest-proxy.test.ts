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

  it('answers 413 for a body over the limit', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'], maxBodyBytes: 100 })
    const res = await produce(app, 'ad-events', { records: [{ key: 'k', value: 'x'.repeat(200) }] })
    expect(res.status).toBe(413)
  })

  it('answers 500 50001 when the log refuses, so the caller retries', async () => {
    const app = createRestProxy({ log, topics: ['ad-events'] })
    await log.close()
    const res = await produce(app, 'ad-events', { records: [{ key: 'k', value: 1 }] })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ error_code: 50001 })
    log = await createEmbeddedLog({ dir })
  })
})
