import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiApp } from '../api/app.js'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log } from '../log/log.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { edgeStatsRecord, testEnvelope, toRecord, trafficMix } from '../testing/events.js'
import { createProcessor } from '../processor/processor.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createBillingJobs, type BillingJobs } from './jobs.js'

/**
 * The read side on what the real processor writes: records through the embedded log and the
 * processor into chDB, then the realtime API, the billing job, reconcile and accounting must agree
 * with the counts the traffic was built with. Catches any drift between the sink's rows and the
 * queries that read them.
 */
const DAY = '2026-11-23'
const NOW = Date.UTC(2026, 10, 24, 12, 0, 0)
const ADMIN = DEMO_DEFAULTS.adminKey
const ADV = DEMO_DEFAULTS.advertiserKey

const root = mkdtempSync(join(tmpdir(), 'adc-read-contract-'))
let ch: ClickHouseClient
let log: Log
let tenants: TenantStore
let billing: BillingJobs
let app: ReturnType<typeof createApiApp>
const { records, expected } = trafficMix(900)
const bot = toRecord(
  testEnvelope({ type: 'impression', n: 99_000_001, impressionId: 'imp_bot', ts: Date.UTC(2026, 10, 23, 12, 0, 30), ua: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' }),
)

const get = async (path: string, key = ADMIN) => {
  const res = await app.request(path, { headers: { Authorization: `Bearer ${key}` } })
  return { status: res.status, body: (await res.json()) as any }
}

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
  await migrate(ch, 'adc')
  log = await createEmbeddedLog({ dir: join(root, 'log'), logger: pino({ level: 'silent' }) })
  await log.ensureTopic('ad-events', 4)
  await log.ensureTopic('edge-stats', 2)
  const all = [...records, bot]
  await log.append('ad-events', all)
  // What the edge saw: every event above accepted once, two rejected. The mix's re-deliveries are the
  // edge's own produce retries (the same envelope again), so the edge counted each of them once.
  const accepted = all.length - expected.duplicates
  await log.append('edge-stats', [
    edgeStatsRecord({ batchId: '01JD0000000000000000000001', minute: Date.UTC(2026, 10, 23, 12, 0), received: accepted + 2, accepted, rejected: 2, rejectedByReason: { invalid_event: 2 } }),
  ])
  const processor = createProcessor({
    log, clickhouse: ch, database: 'adc', stateDir: join(root, 'state'), groupId: 'g-read-contract',
    logger: pino({ level: 'silent' }), registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords: 500,
  })
  await processor.start()
  const deadline = Date.now() + 60_000
  const applied = (topic: string) => Object.values(processor.status().topics[topic] ?? {}).reduce((a, s) => a + s.applied + 1, 0)
  while ((applied('ad-events') < all.length || applied('edge-stats') < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const caughtUp = applied('ad-events')
  await processor.stop()
  expect(caughtUp).toBe(all.length)

  tenants = openTenantStore({ dir: join(root, 'tenants') })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  const logger = pino({ level: 'silent' })
  billing = createBillingJobs({ client: ch, database: 'adc', tenants, dir: join(root, 'jobs'), logger, clock: () => NOW })
  app = createApiApp({ clickhouse: ch, database: 'adc', tenants, billing, logger, clock: () => NOW })
}, 120_000)

afterAll(async () => {
  await billing?.stop()
  await tenants?.close()
  await log?.close()
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

describe('read side on the processor output', () => {
  it('realtime totals match the traffic: each impression and click once, the bot as IVT', async () => {
    const { body } = await get(`/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=${DAY}T11:00:00Z&to=${DAY}T14:00:00Z&granularity=hour`, ADV)
    expect(body.totals).toMatchObject({ impressions: expected.impressions, ivtImpressions: 1 })
    expect(body.ivtByReason).toEqual([{ reason: 'givt_known_bot', eventType: 'impression', events: 1 }])
    expect(body.totals.uniques).toBeGreaterThan(0)
    const cpc = await get(`/v1/metrics/realtime?campaignId=cmp_demo_cpc&from=${DAY}T11:00:00Z&to=${DAY}T14:00:00Z&granularity=hour`, ADV)
    expect(cpc.body.totals).toMatchObject({ clicks: expected.clicks })
  })

  it('the billing job bills the same counts, with re-deliveries as duplicates and the bot removed', async () => {
    const submitted = await app.request('/v1/billing/jobs', {
      method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ day: DAY }),
    })
    expect(submitted.status).toBe(202)
    await billing.idle()
    const { body } = await get(`/v1/billing/daily?day=${DAY}`, ADV)
    expect(body.final).toBe(true)
    const cpm = body.campaigns.find((c: any) => c.campaignId === 'cmp_demo_cpm')
    const cpc = body.campaigns.find((c: any) => c.campaignId === 'cmp_demo_cpc')
    expect(cpm).toMatchObject({ impressions: expected.impressions, duplicates: expected.duplicates, ivtImpressions: 1, ivtByReason: { givt_known_bot: 1 } })
    expect(cpm.spendMicros).toBe(Math.floor((expected.impressions * 2_000_000) / 1000))
    expect(cpc).toMatchObject({ clicks: expected.clicks, orphanClicks: 0, spendMicros: expected.clicks * 500_000 })
  })

  it('reconcile finds nothing unexplained and accounting balances', async () => {
    const rec = await get(`/v1/reports/reconcile/${DAY}`)
    for (const c of rec.body.campaigns) {
      expect({ id: c.campaignId, difference: c.difference, unexplained: c.unexplained }).toEqual({
        id: c.campaignId, difference: { impressions: 0, clicks: 0 }, unexplained: { impressions: 0, clicks: 0 },
      })
    }
    const acc = await get(`/v1/reports/accounting?day=${DAY}`)
    const demo = acc.body.publishers.find((p: any) => p.publisherId === 'pub_demo')
    // Each copy of an envelope is kept as duplicate_delivery and counted apart, not as an acceptance.
    expect(demo.core).toEqual({
      accepted: records.length + 1 - expected.duplicates,
      billed: expected.impressions + expected.clicks,
      keptByReason: { givt_known_bot: 1 },
      logCopies: expected.duplicates,
    })
    expect(demo.balanced).toBe(true)
  })
})
