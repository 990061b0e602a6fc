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
 * The accounting report counts an accepted event on the day the edge received it, on both sides:
 * the edge's counts by their minute, core's verdicts by `received_at`. An event core keeps in
 * bad_rows (`sink_rejected`) must count on that day too, even when it reached the log a day later
 * (a Spool retry, or a request just before midnight): the real processor, the embedded log and chDB.
 */
const DAY = '2026-11-23'
const LATE_EVENING = Date.UTC(2026, 10, 23, 23, 59, 50)

const root = mkdtempSync(join(tmpdir(), 'adc-accounting-days-'))
let ch: ClickHouseClient
let tenants: TenantStore

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
  await migrate(ch, 'adc')
  // Both received by the edge on DAY and appended to the log now (days later, as from the Spool).
  const good = toRecord(testEnvelope({ type: 'impression', n: 88_000_001, impressionId: 'imp_acc_good', ts: LATE_EVENING - 1_000, receivedAt: LATE_EVENING }))
  // Refused by ClickHouse for its content (a ts past year 9999): kept as a sink_rejected bad row.
  const refused = toRecord(testEnvelope({ type: 'impression', n: 88_000_002, impressionId: 'imp_acc_refused', ts: 6e15, receivedAt: LATE_EVENING + 1_000 }))
  await runStream({
    ch, database: 'adc', dir: root, partitions: 1,
    records: [good, refused],
    edgeStats: [{
      key: 'pub_demo',
      value: JSON.stringify({ v: 1, kind: 'edge_stats', batchId: '01JD0000000000000000000A01', publisherId: 'pub_demo', minute: Date.UTC(2026, 10, 23, 23, 59), received: 2, accepted: 2, duplicate: 0, rejected: 0, rejectedByReason: {} }),
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
