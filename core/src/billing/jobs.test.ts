import { open } from 'lmdb'
import pino from 'pino'
import { beforeAll, describe, expect, it } from 'vitest'
import { FIXTURE_DAY, fixtureDay, insertRows } from '../testing/api.js'
import { createBillingJobs } from './jobs.js'
import { scheduledJobId } from './lease.js'
import { useBillingEnv } from '../testing/billing-env.js'

const env = useBillingEnv({ tempPrefix: 'adc-jobs-' })

beforeAll(async () => {
  await insertRows(env.ch.client, 'adc.events_raw', fixtureDay())
})

describe('billing job (final join)', () => {
  it('closes a day into a final snapshot: joins late impressions, drops duplicates and IVT by reason, prices spend', async () => {
    const job = await env.billing.submitBilling(FIXTURE_DAY, 'test')
    await env.billing.idle()
    const done = env.billing.get(job.id)!
    expect(done.status).toBe('done')
    expect(done.progress).toBe(1)
    expect(done.versions[FIXTURE_DAY]).toBe(1)
    const lines = await env.billing.snapshots.lines(FIXTURE_DAY, 1)
    const cpm = lines.find((l) => l.campaignId === 'cmp_demo_cpm')!
    expect(cpm).toMatchObject({
      advertiserId: 'adv_demo', impressions: 3, clicks: 0, ivtImpressions: 1, ivtByReason: { givt_known_bot: 1 }, duplicates: 3, spendMicros: 6000,
    })
    const cpc = lines.find((l) => l.campaignId === 'cmp_demo_cpc')!
    // c1 (stream orphan) is joined to j1 from the previous day, c4 is joined, c2 stays orphan, c3 repeats.
    expect(cpc).toMatchObject({ impressions: 1, clicks: 2, orphanClicks: 1, duplicates: 1, spendMicros: 1_000_000 })
  })

  it('writes a new version on every run and never edits an old one', async () => {
    const before = await env.billing.snapshots.lines(FIXTURE_DAY, 1)
    const job = await env.billing.submitBilling(FIXTURE_DAY, 'test')
    await env.billing.idle()
    expect(env.billing.get(job.id)!.versions[FIXTURE_DAY]).toBe(2)
    expect(await env.billing.snapshots.lines(FIXTURE_DAY, 1)).toEqual(before)
    expect((await env.billing.snapshots.latestFinal(FIXTURE_DAY))?.version).toBe(2)
  })

  it('submits the T+1 job once after the grace period', async () => {
    let now = Date.parse('2026-11-21T00:10:00Z')
    const auto = createBillingJobs({ client: env.ch.client, database: 'adc', tenants: env.tenants, dir: env.tmp(), logger: pino({ level: 'silent' }), clock: () => now, closeLookbackDays: 1 })
    try {
      expect(await auto.dailyTick()).toBeUndefined() // inside the grace period
      now = Date.parse('2026-11-22T01:00:00Z')
      const job = await auto.dailyTick()
      expect(job?.days).toEqual(['2026-11-21'])
      expect(await auto.dailyTick()).toBeUndefined()
      await auto.idle()
      expect(auto.get(job!.id)?.status).toBe('done')
      expect((await auto.snapshots.latestFinal('2026-11-21'))?.version).toBe(1)
      expect(await auto.snapshots.lines('2026-11-21', 1)).toEqual([])
    } finally {
      await auto.stop()
    }
  })

  it('retries a scheduled close whose job failed under the same id, as one job', async () => {
    const dir = env.tmp()
    const raw = open({ path: dir, compression: false })
    const id = scheduledJobId('2026-11-16')
    await raw.put(`job:${id}`, {
      id, kind: 'billing', status: 'failed', progress: 0, days: ['2026-11-16'], modelVersion: 'current', reason: 'scheduled close (T+1)',
      requestedBy: 'scheduler', createdAt: 1, finishedAt: 2, error: 'ClickHouse was down', versions: {},
    })
    await raw.close()
    const auto = createBillingJobs({ client: env.ch.client, database: 'adc', tenants: env.tenants, dir, logger: pino({ level: 'silent' }), clock: () => Date.parse('2026-11-17T01:00:00Z'), closeLookbackDays: 1 })
    try {
      expect((await auto.dailyTick())?.id).toBe(id)
      await auto.idle()
      expect(auto.get(id)).toMatchObject({ status: 'done', versions: { '2026-11-16': 1 } })
      expect(auto.get(id)?.error).toBeUndefined()
      expect(auto.list(100).filter((j) => j.days.includes('2026-11-16'))).toHaveLength(1)
    } finally {
      await auto.stop()
    }
  })

  it('resumes a job that was running when the process died, without writing a day twice', async () => {
    const dir = env.tmp()
    const raw = open({ path: dir, compression: false })
    const base = { kind: 'billing', progress: 0.5, modelVersion: 'current', reason: 'daily close', requestedBy: 'test', createdAt: 1, versions: {} }
    await raw.put('job:01JD00000000000000000000A1', { ...base, id: '01JD00000000000000000000A1', status: 'running', days: ['2026-11-19'] })
    await raw.put('job:01JD00000000000000000000A2', { ...base, id: '01JD00000000000000000000A2', status: 'queued', days: ['2026-11-18'] })
    await raw.close()
    // The first job had already written its snapshot before the crash.
    await env.billing.snapshots.write('2026-11-19', [], { status: 'final', jobId: '01JD00000000000000000000A1', modelVersion: 'current', createdAt: 1 })
    const resumed = createBillingJobs({ client: env.ch.client, database: 'adc', tenants: env.tenants, dir, logger: pino({ level: 'silent' }) })
    try {
      resumed.start()
      await resumed.idle()
      expect(resumed.get('01JD00000000000000000000A1')).toMatchObject({ status: 'done', versions: { '2026-11-19': 1 } })
      expect(resumed.get('01JD00000000000000000000A2')).toMatchObject({ status: 'done', versions: { '2026-11-18': 1 } })
      expect((await resumed.snapshots.versions('2026-11-19')).map((v) => v.version)).toEqual([1])
    } finally {
      await resumed.stop()
    }
  })
})
