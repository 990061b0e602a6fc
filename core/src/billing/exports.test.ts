import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../logger.js'
import { createLocalObjectStore } from '../objects/local-store.js'
import { ObjectStorageError, type ObjectStore } from '../objects/object-store.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant } from '../tenants/tenant-store.js'
import { createBillingJobs } from './jobs.js'
import { openTestClickHouse } from '../testing/api.js'
import { createDayExports, MANIFEST_FORMAT, type DayExport } from './exports.js'
import type { SnapshotLine, SnapshotVersion } from './snapshots.js'

/**
 * Two replicas may write one version's files at once (the holder right after the close, another
 * replica's listing finding them missing). The manifest of a version is put once: a writer that
 * finds one published when it is about to publish keeps it.
 */
const DAY = '2026-07-01'
const dir = mkdtempSync(join(tmpdir(), 'adc-day-exports-'))
let ch: Awaited<ReturnType<typeof openTestClickHouse>>

const version: SnapshotVersion = {
  day: DAY, version: 1, status: 'final', jobId: 'job', modelVersion: 'current', createdAt: 1_000, reason: 'test', supersedes: 0, receivedBefore: 0, complete: true,
}
const line = { day: DAY, version: 1, advertiserId: 'adv_a', campaignId: 'cmp_a', publisherId: 'pub_a', pricingModel: 'cpm', priceMicros: 1, impressions: 1 } as unknown as SnapshotLine
const snapshots = { latestFinal: async () => version, lines: async () => [line], versions: async () => [version] }

beforeAll(async () => {
  ch = await openTestClickHouse()
})

afterAll(async () => {
  await ch.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('export files of a version written by two replicas', () => {
  it("keeps the manifest another writer published while this one wrote its files", async () => {
    const local = createLocalObjectStore({ root: dir })
    const rival: DayExport = { format: MANIFEST_FORMAT, day: DAY, snapshotVersion: 1, complete: true, finalAt: 1_000, files: [] }
    let raced = false
    // The other replica publishes right after this writer put its first data file.
    const store: ObjectStore = {
      ...local,
      async put(key, body, opts) {
        await local.put(key, body, opts)
        if (!raced && !key.endsWith('manifest.json')) {
          raced = true
          await local.put(`${DAY}/v1/manifest.json`, Buffer.from(JSON.stringify(rival)))
        }
      },
    }
    const exports = createDayExports({ snapshots, clickhouse: ch.client, database: 'adc', store })
    const got = await exports.publish(DAY, 1)
    expect(got).toEqual(rival)
    expect(JSON.parse((await local.get(`${DAY}/v1/manifest.json`))!.toString('utf8'))).toEqual(rival)
    // Published, so a later call writes nothing.
    const puts: string[] = []
    const watched = createDayExports({ snapshots, clickhouse: ch.client, database: 'adc', store: { ...local, put: async (k) => void puts.push(k) } })
    expect(await watched.ensure(DAY)).toEqual(rival)
    expect(puts).toEqual([])
  })

  it('publishes a final version it is asked for, and nothing for an unknown version', async () => {
    const root = mkdtempSync(join(dir, 'fresh-'))
    const local = createLocalObjectStore({ root })
    const exports = createDayExports({ snapshots, clickhouse: ch.client, database: 'adc', store: local })
    expect(await exports.publish(DAY, 2)).toBeUndefined()
    const got = await exports.publish(DAY, 1)
    expect(got?.files.map((f) => f.name)).toEqual(['advertiser-adv_a.csv', 'advertiser-adv_a.parquet', 'publisher-pub_a.csv', 'publisher-pub_a.parquet'])
    expect((await local.list(`${DAY}/v1/`)).map((o) => o.key)).toContain(`${DAY}/v1/manifest.json`)
  })
})

describe('export files at close', () => {
  it('logs export_write_failed and still finishes the close when the files cannot be written', async () => {
    const tenants = openTenantStore({ dir: mkdtempSync(join(dir, 'tenants-')) })
    await seedDemoTenant(tenants, DEMO_DEFAULTS)
    const out = new PassThrough()
    const lines: Array<Record<string, unknown>> = []
    out.on('data', (c: Buffer) => c.toString('utf8').split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)))
    const asked: Array<[string, number]> = []
    const jobs = createBillingJobs({
      client: ch.client, database: 'adc', tenants, dir: mkdtempSync(join(dir, 'jobs-')), logger: createLogger({ level: 'info', destination: out }),
      clock: () => Date.parse('2026-07-05T00:00:00Z'),
      exports: { publish: async (day, v) => { asked.push([day, v]); throw new ObjectStorageError('the export bucket is down') } },
    })
    try {
      const job = await jobs.submitBilling('2026-07-02', 'test')
      await jobs.idle()
      expect(jobs.get(job.id)).toMatchObject({ status: 'done', versions: { '2026-07-02': 1 } })
      expect(asked).toEqual([['2026-07-02', 1]])
      expect(lines.filter((l) => l.reason === 'export_write_failed')).toMatchObject([{ day: '2026-07-02', version: 1 }])
    } finally {
      await jobs.stop()
      await tenants.close()
    }
  })
})
