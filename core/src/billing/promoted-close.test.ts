import { open } from 'lmdb'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { insertRows, rawEvent } from '../testing/api.js'
import { createBillingJobs } from './jobs.js'
import { scoreDay } from './reprocess.js'
import { ivtModel, type IvtModel } from '../ivt/models/index.js'
import { useBillingEnv } from '../testing/billing-env.js'
import { ATTRIBUTION_RULES } from '../rules/rules.js'

/**
 * Once finance promoted a reprocess (another IVT model, other attribution rules) as a day's final
 * version, every later close of the day (late events, manual) keeps that model and those rules: it
 * scores the whole day with the model as a reprocess would, so invalid traffic the promotion removed
 * is never billed again. A day never promoted closes with the stream's model as before.
 */
const H = 3_600_000
const env = useBillingEnv({ tempPrefix: 'adc-promoted-close-', clock: () => now, billing: { reprocessBatchSize: 3, ivtModels: (v) => registered.get(v) ?? ivtModel(v) } })
let now = 0
let n = 0
/** Models registered after the start (a deploy), beside ivt/models. */
const registered = new Map<string, IvtModel>()

const row = (type: 'impression' | 'click', imp: string, ts: number, received?: number, processed?: number) =>
  ({ ...rawEvent({ key: `k${++n}`, type, imp, campaign: 'cmp_demo_cpc', ts, received, offset: n, processed }), log_partition: 0 })
/** An impression and its click `gap` ms later, both billable for the stream's model (fast under 1 s only). */
const pair = (id: string, ts: number, gap: number, received?: number, processed?: number) => [
  row('impression', id, ts, received, processed),
  row('click', id, ts + gap, received === undefined ? undefined : received + gap, processed),
]
/** The processor has read both partitions up to `at` (traffic of another campaign). */
const progress = (at: number) =>
  insertRows(env.ch.client, 'adc.events_raw', [0, 1].map((p) => ({ ...rawEvent({ key: `k${++n}`, imp: `p${n}`, campaign: 'cmp_other', ts: at, received: at, offset: n }), log_partition: p })))

/** Runs the schedule until it has nothing to do; returns the closes of `day`. */
async function closes(day: string) {
  const out = []
  for (let job = await env.billing.dailyTick(); job; job = await env.billing.dailyTick()) {
    await env.billing.idle()
    if (job.days[0] === day) out.push(env.billing.get(job.id)!)
  }
  return out
}
const cpc = async (day: string, version: number) => (await env.billing.snapshots.lines(day, version)).find((l) => l.campaignId === 'cmp_demo_cpc')
const decisions = async (model: string) =>
  Number((await (await env.ch.client.query({ query: `SELECT count() AS n FROM adc.ivt_decisions WHERE model_version = {m:String}`, query_params: { m: model }, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n)

describe('closing a day again after a promoted reprocess', () => {
  it('keeps the promoted IVT model and attribution rules: the fast clicks it removed stay removed, as a fresh reprocess would have them', async () => {
    const DAY = '2026-11-12'
    const X = Date.parse(`${DAY}T00:00:00Z`)
    // Two clicks 2 s after their impression (fast for ivt-2026.12.1 only), two a minute after, and one
    // 45 min after (an orphan under the 30 min web window, joined under attr-2026.12.1's 60 min).
    await insertRows(env.ch.client, 'adc.events_raw', [
      ...pair('a1', X + 1 * H, 2_000), ...pair('a2', X + 2 * H, 2_000), ...pair('b1', X + 3 * H, 60_000), ...pair('b2', X + 4 * H, 60_000), ...pair('w1', X + 5 * H, 45 * 60_000),
    ])
    now = X + 50 * H
    await progress(X + 49 * H)
    expect(await closes(DAY)).toHaveLength(1)
    const v1 = (await env.billing.snapshots.latestFinal(DAY))!
    expect(v1).toMatchObject({ modelVersion: 'current', complete: true })
    expect(await cpc(DAY, v1.version)).toMatchObject({ clicks: 4, ivtClicks: 0, orphanClicks: 1 })

    now = X + 51 * H
    const re = await env.billing.submitReprocess({ from: DAY, to: DAY, reason: 'stricter fast clicks', modelVersion: 'ivt-2026.12.1', attributionVersion: 'attr-2026.12.1', requestedBy: 'test' })
    await env.billing.idle()
    const promoted = (await env.billing.promote(re.id, 'finance')).promotedVersions![DAY]!
    expect(await cpc(DAY, promoted)).toMatchObject({ clicks: 3, ivtClicks: 2, ivtByReason: { sivt_fast_click: 2 }, orphanClicks: 0 })
    const reprocessRows = await decisions('ivt-2026.12.1')
    expect(reprocessRows).toBe(2)

    // Late events of the day: another fast click and a slow one, received and written after the promotion.
    now = X + 53 * H
    await insertRows(env.ch.client, 'adc.events_raw', [...pair('a3', X + 6 * H, 2_000, X + 52 * H, X + 52 * H + 60_000), ...pair('b3', X + 7 * H, 60_000, X + 52 * H, X + 52 * H + 60_000)])
    await progress(X + 52 * H + 30 * 60_000)
    const after = await closes(DAY)
    expect(after).toHaveLength(1)
    const latest = (await env.billing.snapshots.latestFinal(DAY))!
    const reclosed = await cpc(DAY, latest.version)
    expect(reclosed).toMatchObject({ clicks: 4, ivtClicks: 3, ivtByReason: { sivt_fast_click: 3 }, orphanClicks: 0 })
    expect(after[0]).toMatchObject({ status: 'done', kept: { [DAY]: { modelVersion: 'ivt-2026.12.1', attributionVersion: 'attr-2026.12.1', from: promoted } } })
    expect(latest).toMatchObject({ version: promoted + 1, supersedes: promoted, modelVersion: 'ivt-2026.12.1', jobId: after[0]!.id })
    expect(latest.reason).toMatch(/^re-close: .*; kept the promoted IVT model ivt-2026\.12\.1 and attribution rules attr-2026\.12\.1 of final v\d+/)
    // Its own decisions, beside the reprocess's: the three fast clicks of the whole day.
    expect(await decisions('ivt-2026.12.1')).toBe(reprocessRows + 3)

    // Scoring the day again under the close's id (a job resumed after a crash) inserts nothing twice.
    await scoreDay({ client: env.ch.client, database: 'adc', day: DAY, model: ivtModel('ivt-2026.12.1')!, jobId: after[0]!.id, batchSize: 3, clock: () => now + 1 })
    expect(await decisions('ivt-2026.12.1')).toBe(reprocessRows + 3)

    // A later close keeps it still (the kept version names the billing job that kept it).
    now = X + 55 * H
    await insertRows(env.ch.client, 'adc.events_raw', [...pair('a4', X + 8 * H, 2_000, X + 54 * H, X + 54 * H + 60_000)])
    await progress(X + 54 * H + 30 * 60_000)
    expect(await closes(DAY)).toHaveLength(1)
    const third = (await env.billing.snapshots.latestFinal(DAY))!
    expect(third).toMatchObject({ modelVersion: 'ivt-2026.12.1' })
    expect(await cpc(DAY, third.version)).toMatchObject({ clicks: 4, ivtClicks: 4, orphanClicks: 0 })

    // The same figures as a fresh reprocess of the day with the promoted model and rules.
    const fresh = await env.billing.submitReprocess({ from: DAY, to: DAY, reason: 'check', modelVersion: 'ivt-2026.12.1', attributionVersion: 'attr-2026.12.1', requestedBy: 'test' })
    await env.billing.idle()
    expect(await env.billing.snapshots.lines(DAY, env.billing.get(fresh.id)!.versions[DAY]!)).toEqual(await env.billing.snapshots.lines(DAY, third.version))

    // A reader re-deriving the verdicts (the reconcile report) gets the rules each final version was made with.
    const windowsMs = ATTRIBUTION_RULES.get('attr-2026.12.1')!.windowsMs
    expect(env.billing.rulesOf(third, DAY)).toEqual({ modelVersion: 'ivt-2026.12.1', windowsMs })
    expect(env.billing.rulesOf((await env.billing.snapshots.versions(DAY)).find((v) => v.version === promoted)!, DAY)).toEqual({ modelVersion: 'ivt-2026.12.1', windowsMs })
    expect(env.billing.rulesOf(v1, DAY)).toEqual({})
  })

  it('closes a day never promoted with the stream model, as before', async () => {
    const DAY = '2026-11-14'
    const X = Date.parse(`${DAY}T00:00:00Z`)
    await insertRows(env.ch.client, 'adc.events_raw', [...pair('c1', X + 1 * H, 2_000), ...pair('c2', X + 2 * H, 60_000)])
    now = X + 50 * H
    await progress(X + 49 * H)
    expect(await closes(DAY)).toHaveLength(1)
    await insertRows(env.ch.client, 'adc.events_raw', [...pair('c3', X + 3 * H, 2_000, X + 50 * H, X + 50 * H + 60_000)])
    now = X + 52 * H
    await progress(X + 51 * H)
    const after = await closes(DAY)
    expect(after).toHaveLength(1)
    expect(after[0]!.kept).toBeUndefined()
    const latest = (await env.billing.snapshots.latestFinal(DAY))!
    expect(latest).toMatchObject({ modelVersion: 'current', jobId: after[0]!.id })
    expect(latest.reason).toMatch(/^re-close: \d+ events/)
    expect(latest.reason).not.toMatch(/kept/)
    expect(await cpc(DAY, latest.version)).toMatchObject({ clicks: 3, ivtClicks: 0 })
  })

  it('fails the close with unknown_reference when the promoted model is no longer registered, writing no version', async () => {
    const DAY = '2026-11-16'
    await env.billing.snapshots.write(DAY, [], { status: 'final', jobId: '01JD0000000000000000000RET', modelVersion: 'ivt-2025.01.1', createdAt: 1, reason: 'promoted reprocess' })
    const job = await env.billing.submitBilling(DAY, 'test')
    await env.billing.idle()
    expect(env.billing.get(job.id)).toMatchObject({ status: 'failed', errorReason: 'unknown_reference', error: expect.stringMatching(/ivt-2025\.01\.1/) })
    expect((await env.billing.snapshots.versions(DAY)).map((v) => v.version)).toEqual([1])

    // The schedule's close of the day fails alike, once: it is not retried, and the days after it still close.
    now = Date.parse(`${DAY}T00:00:00Z`) + 50 * H
    await progress(now - H)
    const scheduled = await closes(DAY)
    expect(scheduled).toMatchObject([{ status: 'failed', errorReason: 'unknown_reference', requestedBy: 'scheduler' }])
    expect(await closes(DAY)).toEqual([])
    expect(await env.billing.snapshots.latestFinal('2026-11-17')).toMatchObject({ modelVersion: 'current' })
    expect((await env.billing.snapshots.versions(DAY)).map((v) => v.version)).toEqual([1])

    // Once the model is registered again (a deploy), the failed scheduled close is queued again under
    // its id and closes the day with it.
    registered.set('ivt-2025.01.1', { ...ivtModel('ivt-2026.12.1')!, version: 'ivt-2025.01.1' })
    const resumed = await closes(DAY)
    expect(resumed).toMatchObject([{ id: scheduled[0]!.id, status: 'done', kept: { [DAY]: { modelVersion: 'ivt-2025.01.1', from: 1 } } }])
    expect(await env.billing.snapshots.latestFinal(DAY)).toMatchObject({ version: 2, modelVersion: 'ivt-2025.01.1', supersedes: 1 })
  })

  it('keeps the model of a promoted version whose reprocess job is gone from the job store, with the default attribution windows, and says so', async () => {
    const DAY = '2026-11-18'
    const X = Date.parse(`${DAY}T00:00:00Z`)
    now = X + 50 * H
    await insertRows(env.ch.client, 'adc.events_raw', [...pair('d1', X + 1 * H, 2_000), ...pair('d2', X + 2 * H, 45 * 60_000)])
    await env.billing.snapshots.write(DAY, [], { status: 'final', jobId: '01JD0000000000000000000GNE', modelVersion: 'ivt-2026.12.1', createdAt: 1, reason: 'promoted reprocess' })
    const job = await env.billing.submitBilling(DAY, 'test')
    await env.billing.idle()
    expect(env.billing.get(job.id)).toMatchObject({ status: 'done', kept: { [DAY]: { modelVersion: 'ivt-2026.12.1', from: 1 } } })
    const latest = (await env.billing.snapshots.latestFinal(DAY))!
    expect(latest).toMatchObject({ version: 2, modelVersion: 'ivt-2026.12.1' })
    expect(latest.reason).toMatch(/kept the promoted IVT model ivt-2026\.12\.1 of final v1 .*default attribution windows/)
    expect(await cpc(DAY, 2)).toMatchObject({ clicks: 0, ivtClicks: 1, orphanClicks: 1 })
  })

  it('resumes a close interrupted while scoring with the promoted model under its id: no decision twice, the version written once', async () => {
    const DAY = '2026-11-22'
    const X = Date.parse(`${DAY}T00:00:00Z`)
    now = X + 50 * H
    await insertRows(env.ch.client, 'adc.events_raw', [...pair('e1', X + 1 * H, 2_000), ...pair('e2', X + 2 * H, 60_000)])
    const dir = env.tmp()
    const raw = open({ path: dir, compression: false })
    const base = { progress: 0, requestedBy: 'test', createdAt: 1, days: [DAY] }
    const R = '01JD0000000000000000000RPR'
    const B = '01JD0000000000000000000BIL'
    await raw.put(`job:${R}`, { ...base, id: R, kind: 'reprocess', status: 'done', modelVersion: 'ivt-2026.12.1', reason: 'stricter', versions: { [DAY]: 1 }, promotedVersions: { [DAY]: 2 } })
    await raw.put(`job:${B}`, { ...base, id: B, kind: 'billing', status: 'running', modelVersion: 'current', reason: 'manual close by test', versions: {}, receivedBefore: now, startedAt: now })
    await raw.close()
    await env.billing.snapshots.write(DAY, [], { status: 'candidate', jobId: R, modelVersion: 'ivt-2026.12.1', createdAt: 1 })
    await env.billing.snapshots.write(DAY, [], { status: 'final', jobId: R, modelVersion: 'ivt-2026.12.1', createdAt: 2, reason: 'promoted reprocess' })
    // The interrupted run had scored the day under the close's id.
    const before = await decisions('ivt-2026.12.1')
    await scoreDay({ client: env.ch.client, database: 'adc', day: DAY, model: ivtModel('ivt-2026.12.1')!, jobId: B, batchSize: 3, clock: () => now })
    expect(await decisions('ivt-2026.12.1')).toBe(before + 1)
    const resumed = createBillingJobs({ client: env.ch.client, database: 'adc', tenants: env.tenants, dir, logger: pino({ level: 'silent' }), clock: () => now + 60_000, reprocessBatchSize: 3 })
    try {
      resumed.start()
      await resumed.idle()
      expect(resumed.get(B)).toMatchObject({ status: 'done', versions: { [DAY]: 3 }, kept: { [DAY]: { modelVersion: 'ivt-2026.12.1', from: 2 } } })
      expect(await decisions('ivt-2026.12.1')).toBe(before + 1)
      expect((await resumed.snapshots.versions(DAY)).map((v) => [v.version, v.status, v.modelVersion])).toEqual([
        [1, 'candidate', 'ivt-2026.12.1'], [2, 'final', 'ivt-2026.12.1'], [3, 'final', 'ivt-2026.12.1'],
      ])
      expect(await cpc(DAY, 3)).toMatchObject({ clicks: 1, ivtClicks: 1, ivtByReason: { sivt_fast_click: 1 } })
    } finally {
      await resumed.stop()
    }
  })
})
