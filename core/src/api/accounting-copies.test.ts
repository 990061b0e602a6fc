import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { testEnvelope, toRecord } from '../testing/events.js'
import { runStream } from '../testing/stream-run.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { accountingReport } from './routes/reports.js'

/**
 * One acceptance at the edge is one envelope (its idempotency key and its receive time). The log can
 * hold that envelope more than once: the edge's forwarder sends a produce again when the first
 * attempt was stored but not acknowledged in time (edge/src/ingest/forward-retry.test.ts shows it
 * in workerd), and the Spool re-delivers likewise. Core keeps each copy as `duplicate_delivery`;
 * the accounting report must count the acceptance once, or a busy day's books show more accepted
 * events in core than the edge ever accepted. A client's re-send of an event that got past the
 * edge's pre-filter is a second acceptance (the edge counted it, with its own receive time) and
 * must stay counted. The real processor, the embedded log and chDB.
 */
const DAY = '2026-11-24'
const T = Date.UTC(2026, 10, 24, 10, 0, 0)

const root = mkdtempSync(join(tmpdir(), 'adc-accounting-copies-'))
let ch: ClickHouseClient
let tenants: TenantStore

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
  await migrate(ch, 'adc')
  const a = toRecord(testEnvelope({ type: 'impression', n: 89_000_001, impressionId: 'imp_copy_a', ts: T, receivedAt: T + 100 }))
  const b = testEnvelope({ type: 'impression', n: 89_000_002, impressionId: 'imp_copy_b', ts: T, receivedAt: T + 200 })
  // The client sent b again 2 s later and the edge accepted it again (its pre-filter had not seen
  // the key yet): the same key, its own receive time.
  const bAgain = toRecord({ ...b, receivedAt: T + 2_200 })
  // Refused by ClickHouse for its content (a ts past year 9999): kept as a sink_rejected bad row.
  const refused = toRecord(testEnvelope({ type: 'impression', n: 89_000_003, impressionId: 'imp_copy_refused', ts: 6e15, receivedAt: T + 300 }))
  const click = toRecord(testEnvelope({ type: 'click', n: 89_000_004, impressionId: 'imp_copy_a', ts: T + 5_000, receivedAt: T + 5_100 }))
  // Each of a, bAgain, refused and the click written twice, as a retried produce writes them; the
  // copy of a comes after other records.
  await runStream({
    ch, database: 'adc', dir: root, partitions: 1, maxBatchRecords: 4,
    records: [a, toRecord(b), refused, refused, bAgain, click, bAgain, a, click],
    edgeStats: [{
      key: 'pub_demo',
      value: JSON.stringify({ v: 1, kind: 'edge_stats', batchId: '01JD0000000000000000000C01', publisherId: 'pub_demo', minute: Date.UTC(2026, 10, 24, 10, 0), received: 5, accepted: 5, duplicate: 0, rejected: 0, rejectedByReason: {} }),
    }],
  })
  tenants = openTenantStore({ dir: join(root, 'tenants') })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
}, 120_000)

afterAll(async () => {
  await tenants?.close()
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

describe('accounting when the log holds an accepted envelope twice', () => {
  it('core stored every copy as duplicate_delivery, billing each acceptance at most once', async () => {
    const rs = await ch.query({
      query: `SELECT impression_id, event_type, reason, count() AS n FROM adc.events_raw GROUP BY impression_id, event_type, reason ORDER BY impression_id, event_type, reason`,
      format: 'JSONEachRow',
    })
    expect((await rs.json<Record<string, unknown>>()).map((r) => ({ ...r, n: Number(r.n) }))).toEqual([
      { impression_id: 'imp_copy_a', event_type: 'click', reason: '', n: 1 },
      { impression_id: 'imp_copy_a', event_type: 'click', reason: 'duplicate_delivery', n: 1 },
      { impression_id: 'imp_copy_a', event_type: 'impression', reason: '', n: 1 },
      { impression_id: 'imp_copy_a', event_type: 'impression', reason: 'duplicate_delivery', n: 1 },
      { impression_id: 'imp_copy_b', event_type: 'impression', reason: '', n: 1 },
      { impression_id: 'imp_copy_b', event_type: 'impression', reason: 'duplicate_delivery', n: 2 },
    ])
  })

  it('counts each acceptance once: the copies are shown apart, the client re-send stays counted, and the books balance', async () => {
    const report = await accountingReport({ clickhouse: ch, database: 'adc', tenants, billing: undefined as never }, DAY)
    const demo = report.publishers.find((p) => p.publisherId === 'pub_demo')
    expect(demo?.edge).toMatchObject({ received: 5, accepted: 5 })
    expect(demo?.core).toEqual({
      accepted: 5,
      billed: 3,
      keptByReason: { duplicate_delivery: 1, sink_rejected: 1 },
      logCopies: 4,
    })
    expect(demo?.differences).toEqual({ edgeUnbalanced: 0, inFlightOrMissing: 0 })
    expect(report.balanced).toBe(true)
  })
})
