import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBillingJobs, type BillingJobs } from '../billing/jobs.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createApiApp } from './app.js'
import { openTestClickHouse } from '../testing/api.js'
import { tempDirs } from '../testing/temp-dirs.js'

/**
 * Billing days are ClickHouse `Date`s (1970-01-01 to 2149-06-06). A day outside that range used to be
 * taken and saturated by the engine: a billing job for 1969-12-31 wrote a new final version of
 * 1970-01-01 (computed from another day's events), and a read of 1900-01-01 answered 1970-01-01's.
 */
const NOW = Date.parse('2026-11-22T12:00:00Z')
let ch: Awaited<ReturnType<typeof openTestClickHouse>>
let tenants: TenantStore
let billing: BillingJobs
let app: ReturnType<typeof createApiApp>
const dirs = tempDirs('adc-day-range-')
const logger = pino({ level: 'silent' })
const ADMIN = { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}` }

beforeAll(async () => {
  ch = await openTestClickHouse()
  tenants = openTenantStore({ dir: dirs.make() })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  billing = createBillingJobs({ client: ch.client, database: 'adc', tenants, dir: dirs.make(), logger, clock: () => NOW })
  // Raw events kept forever: 1970-01-01 is then a day the engine may hold (past a retention, a close is refused: retention-reads.test.ts).
  app = createApiApp({ clickhouse: ch.client, database: 'adc', tenants, billing, logger, clock: () => NOW, retention: { rawDays: 0 } })
})
afterAll(async () => {
  await billing.stop()
  await tenants.close()
  await ch.close()
  dirs.removeAll()
})

const submit = (day: string) => app.request('/v1/billing/jobs', { method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ day }) })

describe('a billing day outside what the engine stores', () => {
  it('is refused (400) by the job, reprocess and read routes, and writes no version of another day', async () => {
    for (const day of ['1969-12-31', '1900-01-01', '0000-01-01']) {
      const res = await submit(day)
      expect(res.status, day).toBe(400)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_body')
      const read = await app.request(`/v1/billing/daily?day=${day}&advertiserId=adv_demo`, { headers: ADMIN })
      expect(read.status, day).toBe(400)
      expect((await app.request(`/v1/reports/reconcile/${day}`, { headers: ADMIN })).status, day).toBe(400)
    }
    const reprocess = await app.request('/v1/reprocess', {
      method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ from: '1969-12-31', to: '1970-01-01', reason: 'x', modelVersion: 'ivt-2026.12.1' }),
    })
    expect(reprocess.status).toBe(400)
    await billing.idle()
    expect(billing.list()).toEqual([])
    expect(await billing.snapshots.versions('1970-01-01')).toEqual([])
  })

  it('takes the first day the engine stores', async () => {
    expect((await submit('1970-01-01')).status).toBe(202)
    await billing.idle()
    expect((await billing.snapshots.versions('1970-01-01')).map((v) => v.day)).toEqual(['1970-01-01'])
  })
})
