import { join } from 'node:path'
import { EVENTS_TOPIC } from '@adc/schemas'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openTestClickHouse } from './testing/api.js'
import { createBillingJobs } from './billing/jobs.js'
import { perCampaign } from './api/routes/billing.js'
import { migrate } from './clickhouse/client.js'
import { createEmbeddedLog, type EmbeddedLogHandle } from './log/embedded-log.js'
import { createMetricsRegistry } from './metrics/registry.js'
import { createProcessor, type Processor } from './processor/processor.js'
import { testEnvelope, toRecord } from './testing/events.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from './tenants/tenant-store.js'
import { tempDirs } from './testing/temp-dirs.js'

/**
 * docs/regions.md made concrete: two regions, each with its own log, processor and ClickHouse
 * database, receive the same event (a client retry that went to the other region while the edge's
 * dedupe was skipped). Each region counts it once, so the regions' own snapshots add up to twice.
 * Billing merges the regions' billing inputs (raw verdict rows, replicated to the home region) and
 * closes the day there: the final join keeps one impression per impressionId and one click per
 * impression, so the event is billed once.
 */
const logger = pino({ level: 'silent' })
const DAY = '2026-08-10'
const T = Date.parse(`${DAY}T12:00:00Z`)
const dirs = tempDirs('adc-regions-')
const tmp = dirs.make
let ch: Awaited<ReturnType<typeof openTestClickHouse>>
let tenants: TenantStore
const regions: Array<{ db: string; log: EmbeddedLogHandle; processor: Processor }> = []

async function region(db: string) {
  await migrate(ch.client, db)
  const log = await createEmbeddedLog({ dir: tmp(), logger, idleWaitMs: 50 })
  await log.ensureTopic(EVENTS_TOPIC, 2)
  const processor = createProcessor({
    log, clickhouse: ch.client, database: db, stateDir: tmp(), groupId: `proc-${db}`, logger, registry: createMetricsRegistry({ defaultMetrics: false }),
    isBookedCampaign: (id) => tenants.getCampaign(id) !== undefined, topicPartitions: 2,
  })
  await processor.start()
  const r = { db, log, processor }
  regions.push(r)
  return r
}

const rows = async (db: string): Promise<number> =>
  Number((await (await ch.client.query({ query: `SELECT count() AS n FROM ${db}.events_raw`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n)

async function close(db: string) {
  const jobs = createBillingJobs({ client: ch.client, database: db, tenants, dir: tmp(), logger, clock: () => T + 2 * 86_400_000 })
  try {
    const job = await jobs.submitBilling(DAY, 'test')
    await jobs.idle()
    const version = jobs.get(job.id)!.versions[DAY]!
    const lines = perCampaign(await jobs.snapshots.lines(DAY, version))
    return {
      impressions: lines.reduce((n, l) => n + l.impressions, 0),
      clicks: lines.reduce((n, l) => n + l.clicks, 0),
      spendMicros: lines.reduce((n, l) => n + l.spendMicros, 0),
    }
  } finally {
    await jobs.stop()
  }
}

beforeAll(async () => {
  ch = await openTestClickHouse()
  tenants = openTenantStore({ dir: tmp() })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
})

afterAll(async () => {
  for (const r of regions) {
    await r.processor.stop()
    await r.log.close()
  }
  await tenants.close()
  await ch.close()
  dirs.removeAll()
})

describe('an event retried into another region', () => {
  it('is billed once after the regions merge their billing inputs, where adding the regional snapshots bills it twice', async () => {
    const eu = await region('adc_eu')
    const us = await region('adc_us')
    const imp = testEnvelope({ type: 'impression', n: 1, impressionId: 'imp_x', ts: T })
    const clk = testEnvelope({ type: 'click', n: 2, impressionId: 'imp_x', ts: T + 5_000 })
    const usOnly = testEnvelope({ type: 'impression', n: 3, impressionId: 'imp_us', ts: T })
    await eu.log.append(EVENTS_TOPIC, [toRecord(imp), toRecord(clk)])
    await us.log.append(EVENTS_TOPIC, [toRecord(imp), toRecord(clk), toRecord(usOnly)])
    const deadline = Date.now() + 20_000
    while ((await rows('adc_eu')) < 2 || (await rows('adc_us')) < 3) {
      if (Date.now() > deadline) throw new Error(`processors did not write: ${await rows('adc_eu')} ${await rows('adc_us')} ${JSON.stringify(eu.processor.status())}`)
      await new Promise((r) => setTimeout(r, 100))
    }

    const euAlone = await close('adc_eu')
    const usAlone = await close('adc_us')
    expect(euAlone).toMatchObject({ impressions: 1, clicks: 1 })
    expect(usAlone).toMatchObject({ impressions: 2, clicks: 1 })
    // Adding the regional snapshots counts the retried impression and click twice.
    expect(euAlone.impressions + usAlone.impressions).toBe(3)
    expect(euAlone.clicks + usAlone.clicks).toBe(2)

    // The merge: the US billing inputs replicated into the home region, then the day closed there.
    await ch.client.command({ query: `INSERT INTO adc_eu.events_raw SELECT * FROM adc_us.events_raw` })
    await ch.client.command({ query: `INSERT INTO adc_eu.ivt_decisions SELECT * FROM adc_us.ivt_decisions` })
    const merged = await close('adc_eu')
    expect(merged).toMatchObject({ impressions: 2, clicks: 1 })
    // 2 impressions at 2 USD CPM + 1 click at 0.50 USD CPC.
    expect(merged.spendMicros).toBe(4_000 + 500_000)
  })
})
