import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { testEnvelope, toRecord } from '../testing/events.js'
import { runStream } from '../testing/stream-run.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createBillingJobs, type BillingJobs } from './jobs.js'

/**
 * Reprocessing scores stored raw events with another model version: the processor writes a day
 * with the stream's model, and a reprocess with ivt-2026.12.1 (fast click under 3 s instead of 1 s,
 * bursts over 100 per IP prefix a minute instead of 600) must flag exactly the events those
 * thresholds separate, with no decision inserted by hand.
 */
const DAY = '2026-11-23'
const T = Date.UTC(2026, 10, 23, 10, 0, 0)
const root = mkdtempSync(join(tmpdir(), 'adc-reprocess-'))
let ch: ClickHouseClient
let tenants: TenantStore
let jobs: BillingJobs

// 40 impressions, each with a click: 10 clicks 2 s after (fast only for the strict model), 5 clicks
// 0.5 s after (fast for both), 25 clicks a minute after. 150 more impressions from one /24 within one
// minute: a burst only above 100.
const envs = [
  ...Array.from({ length: 40 }, (_, i) => testEnvelope({ type: 'impression', n: i, impressionId: `imp_${i}`, ts: T + i * 120_000, ipPrefix: `198.51.${i}.0/24` })),
  ...Array.from({ length: 40 }, (_, i) => {
    const gap = i < 10 ? 2_000 : i < 15 ? 500 : 60_000
    return testEnvelope({ type: 'click', n: 1000 + i, impressionId: `imp_${i}`, ts: T + i * 120_000 + gap, ipPrefix: `198.51.${i}.0/24` })
  }),
  ...Array.from({ length: 150 }, (_, i) =>
    testEnvelope({ type: 'impression', n: 2000 + i, impressionId: `burst_${i}`, ts: T + 2 * 3_600_000 + i * 100, receivedAt: T + 2 * 3_600_000 + i * 100, ipPrefix: '192.0.2.0/24' }),
  ),
  // A click 45 min after its impression: an orphan under the web window of 30 min, joined under 60 min.
  testEnvelope({ type: 'impression', n: 3000, impressionId: 'imp_w', ts: T + 5 * 3_600_000 }),
  testEnvelope({ type: 'click', n: 3001, impressionId: 'imp_w', ts: T + 5 * 3_600_000 + 45 * 60_000 }),
  // Past the day on every partition, so every click is resolved.
  ...['x0', 'x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7'].map((id, i) => testEnvelope({ type: 'impression', n: 9000 + i, impressionId: id, ts: T + 3 * 86_400_000, campaignId: 'cmp_x' })),
]

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
  await migrate(ch, 'adc')
  await runStream({ ch, database: 'adc', dir: root, records: envs.map(toRecord), partitions: 1, maxBatchRecords: 50 })
  tenants = openTenantStore({ dir: join(root, 'tenants') })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  jobs = createBillingJobs({ client: ch, database: 'adc', tenants, dir: join(root, 'jobs'), logger: pino({ level: 'silent' }), reprocessBatchSize: 16 })
}, 120_000)

afterAll(async () => {
  await jobs?.stop()
  await tenants?.close()
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

describe('reprocess with another IVT model version', () => {
  it('scores the stored raw events in batches and flags what the stricter thresholds separate, then promotes on request', async () => {
    const live = await jobs.submitBilling(DAY, 'test')
    await jobs.idle()
    const liveLines = await jobs.snapshots.lines(DAY, jobs.get(live.id)!.versions[DAY]!)
    const cpm = () => liveLines.find((l) => l.campaignId === 'cmp_demo_cpm')!
    const cpc = () => liveLines.find((l) => l.campaignId === 'cmp_demo_cpc')!
    expect(cpm()).toMatchObject({ impressions: 191, ivtImpressions: 0 })
    expect(cpc()).toMatchObject({ clicks: 35, ivtClicks: 5, ivtByReason: { sivt_fast_click: 5 }, orphanClicks: 1 })

    const job = await jobs.submitReprocess({ from: DAY, to: DAY, reason: 'stricter thresholds', modelVersion: 'ivt-2026.12.1', requestedBy: 'test' })
    await jobs.idle()
    const done = jobs.get(job.id)!
    expect(done).toMatchObject({ status: 'done', progress: 1, events: { scored: 231, total: 232 } })
    const cand = await jobs.snapshots.lines(DAY, done.versions[DAY]!)
    expect(cand.find((l) => l.campaignId === 'cmp_demo_cpc')).toMatchObject({ clicks: 25, ivtClicks: 15, ivtByReason: { sivt_fast_click: 15 } })
    expect(cand.find((l) => l.campaignId === 'cmp_demo_cpm')).toMatchObject({ impressions: 141, ivtImpressions: 50, ivtByReason: { sivt_burst: 50 } })
    const decisions = await (await ch.query({ query: `SELECT count() AS n FROM adc.ivt_decisions WHERE model_version = 'ivt-2026.12.1'`, format: 'JSONEachRow' })).json<{ n: number }>()
    expect(Number(decisions[0]!.n)).toBe(65)
    // The live final version is untouched until the candidate is promoted.
    expect((await jobs.snapshots.latestFinal(DAY))?.jobId).toBe(live.id)
    const promoted = await jobs.promote(job.id, 'adm_finance')
    expect((await jobs.snapshots.latestFinal(DAY))?.version).toBe(promoted.promotedVersions![DAY])
    // Promotion changes what is billed: the job record says who made it, as it says who asked for the job.
    expect(jobs.get(job.id)).toMatchObject({ requestedBy: 'test', promotedBy: 'adm_finance' })
  })

  it('rewrites the same decisions when a job is run again over the same day, without doubling them', async () => {
    const again = await jobs.submitReprocess({ from: DAY, to: DAY, reason: 'rerun', modelVersion: 'ivt-2026.12.1', requestedBy: 'test' })
    await jobs.idle()
    const cand = await jobs.snapshots.lines(DAY, jobs.get(again.id)!.versions[DAY]!)
    expect(cand.find((l) => l.campaignId === 'cmp_demo_cpc')).toMatchObject({ clicks: 25, ivtClicks: 15 })
  })

  it('rebuilds a day with another attribution rule version: the click 45 min after its impression joins under a 60 min web window', async () => {
    const job = await jobs.submitReprocess({ from: DAY, to: DAY, reason: 'web window 60 min', modelVersion: 'ivt-2026.11.1', attributionVersion: 'attr-2026.12.1', requestedBy: 'test' })
    await jobs.idle()
    const done = jobs.get(job.id)!
    expect(done).toMatchObject({ status: 'done', attributionVersion: 'attr-2026.12.1' })
    const cand = await jobs.snapshots.lines(DAY, done.versions[DAY]!)
    expect(cand.find((l) => l.campaignId === 'cmp_demo_cpc')).toMatchObject({ clicks: 36, orphanClicks: 0, ivtClicks: 5 })
  })
})
