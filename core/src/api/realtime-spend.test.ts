import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiApp } from './app.js'
import { createBillingJobs, type BillingJobs } from '../billing/jobs.js'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { testEnvelope, toRecord } from '../testing/events.js'
import { runStream } from '../testing/stream-run.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'

/**
 * The realtime spend of a range of whole UTC days is what the final bill charges for them: the bill
 * prices each (day, campaign, publisher) line and rounds it down (billing/snapshots.ts), so the
 * realtime totals price the same lines, not the range's counts as one. At 1,999 micros CPM, one
 * impression is 1 micro; three publishers' one each are 3 micros billed, where 3 × 1,999 / 1000
 * rounded once is 5.
 */
const D1 = '2026-11-23'
const D2 = '2026-11-24'
const T1 = Date.parse(`${D1}T10:00:00Z`)
const T2 = Date.parse(`${D2}T10:00:00Z`)
const NOW = Date.parse('2026-11-26T12:00:00Z')
const ADV = DEMO_DEFAULTS.advertiserKey

const root = mkdtempSync(join(tmpdir(), 'adc-realtime-spend-'))
let ch: ClickHouseClient
let tenants: TenantStore
let billing: BillingJobs
let app: ReturnType<typeof createApiApp>

const imp = (n: number, publisherId: string, ts: number) =>
  testEnvelope({ type: 'impression', n, impressionId: `imp_${n}`, publisherId, ts, campaignId: 'cmp_round' })

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
  await migrate(ch, 'adc')
  const envs = [imp(1, 'pub_demo', T1), imp(2, 'pub_a', T1 + 60_000), imp(3, 'pub_b', T1 + 120_000), imp(4, 'pub_demo', T2)]
  await runStream({ ch, database: 'adc', dir: root, records: envs.map(toRecord), partitions: 1 })
  tenants = openTenantStore({ dir: join(root, 'tenants') })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  await tenants.createCampaign({ id: 'cmp_round', advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 1_999 } })
  const logger = pino({ level: 'silent' })
  billing = createBillingJobs({ client: ch, database: 'adc', tenants, dir: join(root, 'jobs'), logger, clock: () => NOW })
  app = createApiApp({ clickhouse: ch, database: 'adc', tenants, billing, logger, clock: () => NOW })
  for (const day of [D1, D2]) await billing.submitBilling(day, 'test')
  await billing.idle()
}, 120_000)

afterAll(async () => {
  await billing?.stop()
  await tenants?.close()
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

const get = async (path: string) => (await (await app.request(path, { headers: { Authorization: `Bearer ${ADV}` } })).json()) as any

describe('realtime spend against the final bill', () => {
  it('prices whole UTC days as the bill does: per day and publisher, rounded down per line', async () => {
    const billed = async (day: string) => (await get(`/v1/billing/daily?day=${day}`)).campaigns.find((c: any) => c.campaignId === 'cmp_round')
    expect(await billed(D1)).toMatchObject({ impressions: 3, spendMicros: 3 })
    expect(await billed(D2)).toMatchObject({ impressions: 1, spendMicros: 1 })
    for (const granularity of ['minute', 'hour']) {
      const one = await get(`/v1/metrics/realtime?campaignId=cmp_round&from=${D1}T00:00:00Z&to=${D2}T00:00:00Z&granularity=${granularity}`)
      expect(one.totals).toMatchObject({ impressions: 3, spendMicros: 3 })
      const two = await get(`/v1/metrics/realtime?campaignId=cmp_round&from=${D1}T00:00:00Z&to=2026-11-25T00:00:00Z&granularity=${granularity}&dimensions=geo`)
      expect(two.totals).toMatchObject({ impressions: 4, spendMicros: 4 })
    }
  })
})
