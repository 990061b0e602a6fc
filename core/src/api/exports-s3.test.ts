import { createHash } from 'node:crypto'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBillingJobs, type BillingJobs } from '../billing/jobs.js'
import { createS3ObjectStore } from '../objects/s3-store.js'
import { startMoto } from '../testing/moto.js'
import { describeNeeding } from '../testing/needs.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createApiApp } from './app.js'
import { FIXTURE_DAY, fixtureDay, insertRows, openTestClickHouse } from '../testing/api.js'
import { tempDirs } from '../testing/temp-dirs.js'
import { s3Server } from '../testing/tools.js'

/**
 * The reconcile export files on S3 (MinIO in compose; moto's S3 API server on loopback here): the
 * listing hands out presigned GET URLs that fetch the listed bytes with no other credentials. In CI
 * a missing server fails; elsewhere the suite skips.
 */
const NOW = Date.parse(`${FIXTURE_DAY}T00:00:00Z`) + 2 * 86_400_000
const ADMIN = { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}` }
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describeNeeding('export files on S3', s3Server, () => {
  let moto: Awaited<ReturnType<typeof startMoto>>
  let ch: Awaited<ReturnType<typeof openTestClickHouse>>
  let tenants: TenantStore
  let billing: BillingJobs
  let app: ReturnType<typeof createApiApp>
  const dirs = tempDirs('adc-exports-s3-')
  const tmp = dirs.make

  beforeAll(async () => {
    moto = await startMoto(['warehouse'])
    ch = await openTestClickHouse()
    tenants = openTenantStore({ dir: tmp() })
    await seedDemoTenant(tenants, DEMO_DEFAULTS)
    const logger = pino({ level: 'silent' })
    billing = createBillingJobs({ client: ch.client, database: 'adc', tenants, dir: tmp(), logger, clock: () => NOW })
    const exportStore = createS3ObjectStore({ s3: { endpoint: moto.endpoint, accessKeyId: 'adc', secretAccessKey: 'adc_secret' }, bucket: 'warehouse', prefix: 'exports/' })
    app = createApiApp({ clickhouse: ch.client, database: 'adc', tenants, billing, logger, clock: () => NOW, exportStore, exportUrlTtlSeconds: 300 })
    await insertRows(ch.client, 'adc.events_raw', fixtureDay())
    await billing.submitBilling(FIXTURE_DAY, 'test')
    await billing.idle()
  }, 120_000)

  afterAll(async () => {
    await billing?.stop()
    await tenants?.close()
    await ch?.close()
    moto?.stop()
    dirs.removeAll()
  })

  describe('export files on S3', () => {
    it('lists presigned URLs, valid for the configured time, that fetch exactly the listed bytes', async () => {
      const res = await app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers: ADMIN })
      expect(res.status).toBe(200)
      const body = (await res.json()) as { snapshotVersion: number; files: Array<{ name: string; format: string; rows: number; sha256: string; bytes: number; url: string; expiresAt: string }> }
      expect(body.files.map((f) => f.name)).toEqual(['advertiser-adv_demo.csv', 'advertiser-adv_demo.parquet', 'publisher-pub_demo.csv', 'publisher-pub_demo.parquet'])
      for (const f of body.files) {
        const u = new URL(f.url)
        expect(u.origin).toBe(moto.endpoint)
        expect(u.pathname).toBe(`/warehouse/exports/${FIXTURE_DAY}/v1/${f.name}`)
        expect(u.searchParams.get('X-Amz-Expires')).toBe('300')
        expect(u.searchParams.get('X-Amz-Date')).toBe(new Date(NOW).toISOString().replace(/[-:]/g, '').replace('.000', ''))
        expect(f.expiresAt).toBe(new Date(NOW + 300_000).toISOString())
        // Nothing but the URL: no Authorization header.
        const got = await fetch(f.url)
        expect(got.status).toBe(200)
        const bytes = Buffer.from(await got.arrayBuffer())
        expect(sha(bytes), f.name).toBe(f.sha256)
        expect(bytes.length).toBe(f.bytes)
      }
      const parquet = body.files.find((f) => f.format === 'parquet')!
      const rs = await ch.client.query({
        query: 'SELECT count() AS n FROM format(Parquet, base64Decode({d:String}))',
        query_params: { d: Buffer.from(await (await fetch(parquet.url)).arrayBuffer()).toString('base64') },
        format: 'JSONEachRow',
      })
      expect(Number((await rs.json<{ n: number }>())[0]!.n)).toBe(parquet.rows)
      // The manifest was published to the bucket last, beside the files.
      const listing = await (await fetch(`${moto.endpoint}/warehouse?list-type=2&prefix=exports/`)).text()
      expect([...listing.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])).toEqual([
        ...body.files.map((f) => `exports/${FIXTURE_DAY}/v1/${f.name}`), `exports/${FIXTURE_DAY}/v1/manifest.json`,
      ].sort())
    })

    it('still streams a file through core to a key that may read it', async () => {
      const res = await app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files/publisher-pub_demo.csv?version=1`, { headers: { authorization: `Bearer ${DEMO_DEFAULTS.publisherKey}` } })
      expect(res.status).toBe(200)
      expect((await res.text()).split('\n')[0]).toMatch(/^day,version,/)
    })
  })
})
