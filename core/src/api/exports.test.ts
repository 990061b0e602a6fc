import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBillingJobs, type BillingJobs } from '../billing/jobs.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createApiApp } from './app.js'
import { FIXTURE_DAY, fixtureDay, insertRows, openTestClickHouse } from '../testing/api.js'

let ch: Awaited<ReturnType<typeof openTestClickHouse>>
let tenants: TenantStore
let billing: BillingJobs
let app: ReturnType<typeof createApiApp>
const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'adc-exports-'))
  dirs.push(d)
  return d
}
const NOW = Date.parse(`${FIXTURE_DAY}T00:00:00Z`) + 2 * 86_400_000
const ADMIN = { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}` }

interface FileEntry { name: string; kind: string; id: string; format: string; rows: number; bytes: number; sha256: string; url: string }

beforeAll(async () => {
  ch = await openTestClickHouse()
  tenants = openTenantStore({ dir: tmp() })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  const logger = pino({ level: 'silent' })
  billing = createBillingJobs({ client: ch.client, database: 'adc', tenants, dir: tmp(), logger, clock: () => NOW })
  app = createApiApp({ clickhouse: ch.client, database: 'adc', tenants, billing, logger, registry: new Registry(), clock: () => NOW, dataDir: tmp() })
  await insertRows(ch.client, 'adc.events_raw', fixtureDay())
})

afterAll(async () => {
  await billing.stop()
  await tenants.close()
  await ch.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('GET /v1/reports/reconcile/{day}/files', () => {
  it('answers 404 before the day is closed', async () => {
    const res = await app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers: ADMIN })
    expect(res.status).toBe(404)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found')
  })

  it("lists one CSV per advertiser and per publisher of the latest final snapshot, with URL, checksum and rows that match what is served", async () => {
    await billing.submitBilling(FIXTURE_DAY, 'test')
    await billing.idle()
    const res = await app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers: ADMIN })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { day: string; snapshotVersion: number; files: FileEntry[] }
    expect(body.snapshotVersion).toBe(1)
    expect(body.files.map((f) => f.name).sort()).toEqual(['advertiser-adv_demo.csv', 'publisher-pub_demo.csv'])
    const lines = await billing.snapshots.lines(FIXTURE_DAY, 1)
    for (const f of body.files) {
      expect(f.url).toBe(`/v1/reports/reconcile/${FIXTURE_DAY}/files/${f.name}`)
      const served = await app.request(f.url, { headers: ADMIN })
      expect(served.status).toBe(200)
      expect(served.headers.get('content-type')).toContain('text/csv')
      const text = await served.text()
      expect(createHash('sha256').update(text).digest('hex')).toBe(f.sha256)
      expect(Buffer.byteLength(text)).toBe(f.bytes)
      const rows = text.trim().split('\n')
      expect(rows[0]).toMatch(/^day,version,advertiser_id,campaign_id,publisher_id,/)
      expect(rows.length - 1).toBe(f.rows)
      expect(f.rows).toBe(lines.length)
      const spendCol = rows[0]!.split(',').indexOf('spend_micros')
      expect(rows.slice(1).reduce((n, r) => n + Number(r.split(',')[spendCol]), 0)).toBe(lines.reduce((n, l) => n + l.spendMicros, 0))
    }
  })

  it('follows a re-close to the new version, and refuses other names and non-admin keys', async () => {
    await billing.submitBilling(FIXTURE_DAY, 'test')
    await billing.idle()
    const body = (await (await app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers: ADMIN })).json()) as { snapshotVersion: number }
    expect(body.snapshotVersion).toBe(2)
    expect((await app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files/..%2Fmanifest.json`, { headers: ADMIN })).status).toBe(404)
    expect((await app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files/advertiser-nobody.csv`, { headers: ADMIN })).status).toBe(404)
    expect((await app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers: { authorization: `Bearer ${DEMO_DEFAULTS.advertiserKey}` } })).status).toBe(403)
  })
})
