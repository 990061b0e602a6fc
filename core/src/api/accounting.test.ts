import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { edgeStatsRecord, testEnvelope, toRecord } from '../testing/events.js'
import { runStream } from '../testing/stream-run.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { accountingReport } from './routes/reports.js'

/**
 * The accounting report on what the real processor wrote (the embedded log, LMDB state and chDB),
 * two days of one publisher's traffic:
 *
 * - DAY: the report counts an accepted event on the day the edge received it, on both sides:
 *   the edge's counts by their minute, core's verdicts by `received_at`. An event core keeps in
 *   bad_rows (`sink_rejected`) must count on that day too, even when it reached the log a day later
 *   (a Spool retry, or a request just before midnight).
 * - COPY_DAY: one acceptance at the edge is one envelope (its idempotency key and its receive
 *   time). The log can hold that envelope more than once: the edge's forwarder sends a produce again when the first
 *   attempt was stored but not acknowledged in time (edge/src/ingest/forward-retry.test.ts shows it
 *   in workerd), and the Spool re-delivers likewise. Core keeps each copy as `duplicate_delivery`;
 *   the accounting report must count the acceptance once, or a busy day's books show more accepted
 *   events in core than the edge ever accepted. A client's re-send of an event that got past the
 *   edge's pre-filter is a second acceptance (the edge counted it, with its own receive time) and
 *   must stay counted.
 */
const DAY = '2026-11-23'
const LATE_EVENING = Date.UTC(2026, 10, 23, 23, 59, 50)
const COPY_DAY = '2026-11-24'
const T = Date.UTC(2026, 10, 24, 10, 0, 0)

const root = mkdtempSync(join(tmpdir(), 'adc-accounting-'))
let ch: ClickHouseClient
let tenants: TenantStore

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
  await migrate(ch, 'adc')
  // Both received by the edge on DAY and appended to the log now (days later, as from the Spool).
  const good = toRecord(testEnvelope({ type: 'impression', n: 88_000_001, impressionId: 'imp_acc_good', ts: LATE_EVENING - 1_000, receivedAt: LATE_EVENING }))
  // Refused by ClickHouse for its content (a ts past year 9999): kept as a sink_rejected bad row.
  const refused = toRecord(testEnvelope({ type: 'impression', n: 88_000_002, impressionId: 'imp_acc_refused', ts: 6e15, receivedAt: LATE_EVENING + 1_000 }))
  const a = toRecord(testEnvelope({ type: 'impression', n: 89_000_001, impressionId: 'imp_copy_a', ts: T, receivedAt: T + 100 }))
  const b = testEnvelope({ type: 'impression', n: 89_000_002, impressionId: 'imp_copy_b', ts: T, receivedAt: T + 200 })
  // The client sent b again 2 s later and the edge accepted it again (its pre-filter had not seen
  // the key yet): the same key, its own receive time.
  const bAgain = toRecord({ ...b, receivedAt: T + 2_200 })
  // Refused by ClickHouse for its content (a ts past year 9999): kept as a sink_rejected bad row.
  const refusedCopy = toRecord(testEnvelope({ type: 'impression', n: 89_000_003, impressionId: 'imp_copy_refused', ts: 6e15, receivedAt: T + 300 }))
  const click = toRecord(testEnvelope({ type: 'click', n: 89_000_004, impressionId: 'imp_copy_a', ts: T + 5_000, receivedAt: T + 5_100 }))
  // Each of a, bAgain, refusedCopy and the click written twice, as a retried produce writes them; the
  // copy of a comes after other records.
  await runStream({
    ch, database: 'adc', dir: root, partitions: 1, maxBatchRecords: 4,
    records: [good, refused, a, toRecord(b), refusedCopy, refusedCopy, bAgain, click, bAgain, a, click],
    edgeStats: [
      edgeStatsRecord({ batchId: '01JD0000000000000000000A01', minute: Date.UTC(2026, 10, 23, 23, 59), accepted: 2 }),
      // The edge accepted five on COPY_DAY: a, b, bAgain, refusedCopy and the click.
      edgeStatsRecord({ batchId: '01JD0000000000000000000C01', minute: Date.UTC(2026, 10, 24, 10, 0), accepted: 5 }),
    ],
  })
  tenants = openTenantStore({ dir: join(root, 'tenants') })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
}, 120_000)

afterAll(async () => {
  await tenants?.close()
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

describe('accounting by the day the edge received an event', () => {
  it('counts a sink_rejected event that reached the log days later on the day the edge accepted it, and balances', async () => {
    const report = await accountingReport({ clickhouse: ch, database: 'adc', tenants, billing: undefined as never }, DAY)
    const demo = report.publishers.find((p) => p.publisherId === 'pub_demo')
    expect(demo?.core).toEqual({ accepted: 2, billed: 1, keptByReason: { sink_rejected: 1 }, logCopies: 0 })
    expect(demo?.differences).toEqual({ edgeUnbalanced: 0, inFlightOrMissing: 0 })
    expect(report.balanced).toBe(true)
    // The day the log received it holds nothing of it.
    const today = new Date().toISOString().slice(0, 10)
    const later = await accountingReport({ clickhouse: ch, database: 'adc', tenants, billing: undefined as never }, today)
    expect(later.publishers.find((p) => p.publisherId === 'pub_demo')?.core.accepted ?? 0).toBe(0)
  })
})

describe('accounting when the log holds an accepted envelope twice', () => {
  it('core stored every copy as duplicate_delivery, billing each acceptance at most once', async () => {
    const rs = await ch.query({
      query: `SELECT impression_id, event_type, reason, count() AS n FROM adc.events_raw WHERE impression_id LIKE 'imp_copy_%' GROUP BY impression_id, event_type, reason ORDER BY impression_id, event_type, reason`,
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
    const report = await accountingReport({ clickhouse: ch, database: 'adc', tenants, billing: undefined as never }, COPY_DAY)
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
