import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMetricsRegistry } from './registry.js'
import { createSpoolWatch } from './spool-watch.js'

// A loopback stand-in for the edge's operator route `GET /v1/internal/spool/:publisherId` (Bearer
// EDGE_SYNC_KEY), answering SpoolStats as edge/src/ingest/spool.ts does.
let server: Server
let url = ''
const seen: string[] = []
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(`${req.headers.authorization} ${req.url}`)
    if (req.headers.authorization !== 'Bearer sync_key_test') return void res.writeHead(401).end()
    const id = decodeURIComponent(req.url!.split('/').pop()!)
    if (id === 'pub_down') return void res.writeHead(503).end()
    const stats = id === 'pub_a' ? { depth: 7, dead: 3 } : { depth: 0, dead: 0 }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...stats, byTopic: {}, delivered: 1, deliveryRounds: 1, failStreak: 0, nextAlarm: null }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

describe('edge spool watch', () => {
  it("exports each publisher's dead rows and depth, and counts the publishers the edge did not answer for", async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false })
    const publishers = ['pub_a', 'pub_b', 'pub_down'].map((id) => ({ id }))
    const watch = createSpoolWatch({ edgeUrl: url, syncKey: 'sync_key_test', tenants: { listPublishers: () => publishers as never }, registry, logger: pino({ level: 'silent' }) })
    expect(await watch.pollOnce()).toBe(2)
    const text = await registry.metrics()
    expect(text).toContain('adc_edge_spool_dead_rows{publisher_id="pub_a"} 3')
    expect(text).toContain('adc_edge_spool_dead_rows{publisher_id="pub_b"} 0')
    expect(text).toContain('adc_edge_spool_depth{publisher_id="pub_a"} 7')
    expect(text).not.toContain('publisher_id="pub_down"')
    expect(text).toContain('adc_edge_spool_poll_failures_total 1')
    expect(seen).toContain('Bearer sync_key_test /v1/internal/spool/pub_a')
  })
})
