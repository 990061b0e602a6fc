import { SNAPSHOT_VERSION_HEADER } from '@adc/schemas'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import pino from 'pino'
import { Registry } from 'prom-client'
import { beforeAll, describe, expect, it } from 'vitest'
import { createLocalObjectStore } from '../objects/local-store.js'
import type { ObjectStore } from '../objects/object-store.js'
import { DEMO_DEFAULTS } from '../tenants/tenant-store.js'
import { createApiApp } from './app.js'
import { FIXTURE_DAY, fixtureDay, insertRows, rawEvent } from '../testing/api.js'
import { useApiEnv } from '../testing/api-env.js'

const env = useApiEnv({ tempPrefix: 'adc-exports-', clock: () => NOW, app: ({ tmp }) => ({ registry: new Registry(), dataDir: tmp(), exportStore: store }) })
const store: ObjectStore = createLocalObjectStore({ root: join(env.tmp(), 'exports') })
let advTwoKey: string
let pubTwoKey: string
const NOW = Date.parse(`${FIXTURE_DAY}T00:00:00Z`) + 2 * 86_400_000
const D = Date.parse(`${FIXTURE_DAY}T00:00:00Z`)
const ADMIN = { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}` }
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

interface FileEntry { name: string; kind: string; id: string; format: string; rows: number; bytes: number; sha256: string; url: string; expiresAt: string | null }
interface Listing { day: string; snapshotVersion: number; complete: boolean; finalAt: number; files: FileEntry[] }

async function list(headers: Record<string, string>, a = env.app): Promise<Listing> {
  const res = await a.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers })
  expect(res.status).toBe(200)
  return (await res.json()) as Listing
}

/** Reads a Parquet file back with the engine (not the code that wrote it): row count and column sums. */
async function readParquet(body: Buffer): Promise<{ rows: number; impressions: number; clicks: number; spend: number; ids: string[] }> {
  const rs = await env.ch.client.query({
    query: `SELECT count() AS rows, sum(impressions) AS impressions, sum(clicks) AS clicks, sum(spend_micros) AS spend,
        groupArray(concat(advertiser_id, '/', campaign_id, '/', publisher_id)) AS ids
      FROM format(Parquet, base64Decode({data:String}))`,
    query_params: { data: body.toString('base64') },
    format: 'JSONEachRow',
  })
  const [r] = await rs.json<{ rows: number; impressions: number; clicks: number; spend: number; ids: string[] }>()
  return { rows: Number(r!.rows), impressions: Number(r!.impressions), clicks: Number(r!.clicks), spend: Number(r!.spend), ids: r!.ids }
}

beforeAll(async () => {
  // A second advertiser and publisher, so each key's view can leave the other's files out.
  advTwoKey = (await env.tenants.createAdvertiser({ id: 'adv_two', name: 'Two' })).apiKey
  await env.tenants.createCampaign({ id: 'cmp_two', advertiserId: 'adv_two', pricing: { model: 'cpm', priceMicros: 4_000_000 } })
  pubTwoKey = (await env.tenants.createPublisher({ id: 'pub_two', name: 'Two' })).apiKey
  await insertRows(env.ch.client, 'adc.events_raw', [
    ...fixtureDay(),
    rawEvent({ key: 't1', imp: 'impt1', campaign: 'cmp_two', publisher: 'pub_two', ts: D + 7 * 3_600_000 }),
    rawEvent({ key: 't2', imp: 'impt2', campaign: 'cmp_two', publisher: 'pub_two', ts: D + 8 * 3_600_000 }),
    rawEvent({ key: 't3', imp: 'impt3', campaign: 'cmp_demo_cpm', publisher: 'pub_two', ts: D + 9 * 3_600_000 }),
  ])
})

describe('GET /v1/reports/reconcile/{day}/files', () => {
  it('answers 404 before the day is closed', async () => {
    const res = await env.app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers: ADMIN })
    expect(res.status).toBe(404)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found')
  })

  it('lists a CSV and a Parquet file per advertiser and per publisher of the latest final snapshot, each with URL, checksum and rows that match what is served', async () => {
    await env.billing.submitBilling(FIXTURE_DAY, 'test')
    await env.billing.idle()
    const body = await list(ADMIN)
    expect(body.snapshotVersion).toBe(1)
    expect(body.files.map((f) => f.name)).toEqual([
      'advertiser-adv_demo.csv', 'advertiser-adv_demo.parquet', 'advertiser-adv_two.csv', 'advertiser-adv_two.parquet',
      'publisher-pub_demo.csv', 'publisher-pub_demo.parquet', 'publisher-pub_two.csv', 'publisher-pub_two.parquet',
    ])
    const lines = await env.billing.snapshots.lines(FIXTURE_DAY, 1)
    for (const f of body.files) {
      const mine = lines.filter((l) => (f.kind === 'advertiser' ? l.advertiserId : l.publisherId) === f.id)
      expect(mine.length).toBeGreaterThan(0)
      expect(f.rows, f.name).toBe(mine.length)
      expect(f.url).toBe(`/v1/reports/reconcile/${FIXTURE_DAY}/files/${f.name}?version=1`)
      expect(f.expiresAt).toBeNull()
      const served = await env.app.request(f.url, { headers: ADMIN })
      expect(served.status).toBe(200)
      const bytes = Buffer.from(await served.arrayBuffer())
      expect(sha(bytes), f.name).toBe(f.sha256)
      expect(bytes.length).toBe(f.bytes)
      expect(served.headers.get('etag')).toBe(`"${f.sha256}"`)
      const spend = mine.reduce((n, l) => n + l.spendMicros, 0)
      const impressions = mine.reduce((n, l) => n + l.impressions, 0)
      const clicks = mine.reduce((n, l) => n + l.clicks, 0)
      if (f.format === 'csv') {
        expect(served.headers.get('content-type')).toContain('text/csv')
        const rows = bytes.toString('utf8').trim().split('\n')
        expect(rows[0]).toMatch(/^day,version,advertiser_id,campaign_id,publisher_id,/)
        expect(rows.length - 1).toBe(f.rows)
        const spendCol = rows[0]!.split(',').indexOf('spend_micros')
        expect(rows.slice(1).reduce((n, r) => n + Number(r.split(',')[spendCol]), 0)).toBe(spend)
      } else {
        expect(served.headers.get('content-type')).toBe('application/vnd.apache.parquet')
        expect(bytes.subarray(0, 4).toString()).toBe('PAR1')
        const back = await readParquet(bytes)
        expect(back).toMatchObject({ rows: f.rows, impressions, clicks, spend })
        expect(back.ids.sort()).toEqual(mine.map((l) => `${l.advertiserId}/${l.campaignId}/${l.publisherId}`).sort())
      }
    }
    expect(lines.reduce((n, l) => n + l.spendMicros, 0)).toBeGreaterThan(0)
  })

  it('shows an advertiser or publisher key only its own files, serves them, and refuses the others', async () => {
    const asAdv = await list(bearer(DEMO_DEFAULTS.advertiserKey))
    expect(asAdv.files.map((f) => f.name)).toEqual(['advertiser-adv_demo.csv', 'advertiser-adv_demo.parquet'])
    const asPub = await list(bearer(pubTwoKey))
    expect(asPub.files.map((f) => f.name)).toEqual(['publisher-pub_two.csv', 'publisher-pub_two.parquet'])
    expect((await list(bearer(advTwoKey))).files.map((f) => f.name)).toEqual(['advertiser-adv_two.csv', 'advertiser-adv_two.parquet'])

    const get = (name: string, key: string) => env.app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files/${name}?version=1`, { headers: bearer(key) })
    expect((await get('advertiser-adv_demo.parquet', DEMO_DEFAULTS.advertiserKey)).status).toBe(200)
    expect((await get('publisher-pub_two.csv', pubTwoKey)).status).toBe(200)
    for (const [name, key] of [
      ['advertiser-adv_two.csv', DEMO_DEFAULTS.advertiserKey],
      ['publisher-pub_demo.csv', DEMO_DEFAULTS.advertiserKey],
      ['advertiser-adv_demo.csv', pubTwoKey],
      ['publisher-pub_demo.parquet', pubTwoKey],
      // Another tenant's name is refused whether the file exists or not.
      ['advertiser-adv_nobody.csv', advTwoKey],
    ] as const) {
      const res = await get(name, key)
      expect(res.status, `${name} with another key`).toBe(403)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('forbidden')
    }
    expect((await env.app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers: bearer('nope_not_a_key') })).status).toBe(401)
  })

  it('writes a re-close as a new version beside the old one, whose files stay as they were', async () => {
    const v1 = await list(ADMIN)
    const v1Bytes = Buffer.from(await (await env.app.request(v1.files[1]!.url, { headers: ADMIN })).arrayBuffer())
    // A late impression for pub_two, then a re-close: version 2 holds it.
    await insertRows(env.ch.client, 'adc.events_raw', [rawEvent({ key: 't4', imp: 'impt4', campaign: 'cmp_two', publisher: 'pub_two', ts: D + 10 * 3_600_000 })])
    await env.billing.submitBilling(FIXTURE_DAY, 'test')
    await env.billing.idle()
    const v2 = await list(ADMIN)
    expect(v2.snapshotVersion).toBe(2)
    expect(v2.files.every((f) => f.url.endsWith('?version=2'))).toBe(true)
    const two = (l: Listing) => l.files.find((f) => f.name === 'advertiser-adv_two.parquet')!
    expect(two(v2).sha256).not.toBe(two(v1).sha256)
    const back = await readParquet(Buffer.from(await (await env.app.request(two(v2).url, { headers: ADMIN })).arrayBuffer()))
    expect(back.impressions).toBe(3)
    // Version 1 is still served as listed then, byte for byte.
    const again = await env.app.request(v1.files[1]!.url, { headers: ADMIN })
    expect(again.headers.get(SNAPSHOT_VERSION_HEADER)).toBe('1')
    expect(sha(Buffer.from(await again.arrayBuffer()))).toBe(sha(v1Bytes))
    expect((await store.list(`${FIXTURE_DAY}/`)).filter((o) => o.key.endsWith('manifest.json')).map((o) => o.key)).toEqual([
      `${FIXTURE_DAY}/v1/manifest.json`, `${FIXTURE_DAY}/v2/manifest.json`,
    ])
    // Without a version the latest final one is served.
    const latest = await env.app.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files/advertiser-adv_two.parquet`, { headers: ADMIN })
    expect(latest.headers.get(SNAPSHOT_VERSION_HEADER)).toBe('2')
  })

  it('refuses other names, unknown versions and days in the future', async () => {
    const get = (path: string) => env.app.request(`/v1/reports/reconcile/${path}`, { headers: ADMIN })
    expect((await get(`${FIXTURE_DAY}/files/..%2Fmanifest.json`)).status).toBe(404)
    expect((await get(`${FIXTURE_DAY}/files/manifest.json`)).status).toBe(404)
    expect((await get(`${FIXTURE_DAY}/files/advertiser-nobody.csv`)).status).toBe(404)
    expect((await get(`${FIXTURE_DAY}/files/advertiser-adv_demo.csv?version=9`)).status).toBe(404)
    expect((await get(`${FIXTURE_DAY}/files/advertiser-adv_demo.csv?version=0`)).status).toBe(400)
    expect((await get('2099-01-01/files')).status).toBe(400)
  })
})

describe('export files of an earlier layout', () => {
  it('writes a version again whose manifest lists CSV files only, with the Parquet files beside them', async () => {
    const local = createLocalObjectStore({ root: join(env.tmp(), 'exports') })
    await local.put(`${FIXTURE_DAY}/v2/advertiser-adv_demo.csv`, Buffer.from('day\n'))
    const old = { day: FIXTURE_DAY, snapshotVersion: 2, files: [{ name: 'advertiser-adv_demo.csv', kind: 'advertiser', id: 'adv_demo', format: 'csv', rows: 0, bytes: 4, sha256: 'x' }] }
    await local.put(`${FIXTURE_DAY}/v2/manifest.json`, Buffer.from(JSON.stringify(old)))
    const app2 = createApiApp({ clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: pino({ level: 'silent' }), clock: () => NOW, exportStore: local })
    const body = await list(ADMIN, app2)
    expect(body.snapshotVersion).toBe(2)
    expect(body.files.filter((f) => f.format === 'parquet')).toHaveLength(4)
    expect(body.files.find((f) => f.name === 'advertiser-adv_demo.csv')!.rows).toBeGreaterThan(0)
  })
})

describe('export files are published only whole', () => {
  it('a write that fails before its manifest publishes nothing, and the next listing writes the version whole', async () => {
    const root = join(env.tmp(), 'exports')
    const local = createLocalObjectStore({ root })
    let failOn: string | undefined = 'publisher-pub_demo.parquet'
    const flaky: ObjectStore = {
      ...local,
      async put(key, body) {
        if (failOn && key.endsWith(failOn)) throw new Error('disk full')
        return local.put(key, body)
      },
    }
    const logger = pino({ level: 'silent' })
    const app2 = createApiApp({ clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger, clock: () => NOW, exportStore: flaky })
    const res = await app2.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files`, { headers: ADMIN })
    expect(res.status).toBe(500)
    // Some data files were put, but no manifest: no reader can see any of them.
    expect((await local.list('')).length).toBeGreaterThan(0)
    expect((await local.list('')).some((o) => o.key.endsWith('manifest.json'))).toBe(false)
    expect((await app2.request(`/v1/reports/reconcile/${FIXTURE_DAY}/files/advertiser-adv_demo.csv?version=2`, { headers: ADMIN })).status).toBe(500)
    failOn = undefined
    const body = await list(ADMIN, app2)
    expect(body.files).toHaveLength(8)
    for (const f of body.files) {
      const bytes = Buffer.from(await (await app2.request(f.url, { headers: ADMIN })).arrayBuffer())
      expect(sha(bytes)).toBe(f.sha256)
    }
  })
})
