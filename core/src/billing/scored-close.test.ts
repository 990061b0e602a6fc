import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { insertRows, rawEvent } from '../testing/api.js'
import { useBillingEnv } from '../testing/billing-env.js'
import { createBillingJobs, type BillingJobs, type Job } from './jobs.js'
import { openLocalJobStore, type JobStore } from './job-store.js'

/**
 * A close that keeps a promoted IVT model scores the day, then classifies it. Rows the processor
 * writes in between (received before the cut-off, still being written) were never scored by the
 * model: the version must not count them as clean. They are left to the next close, which scores them.
 */
const DAY = '2026-11-13'
const X = Date.parse(`${DAY}T00:00:00Z`)
const H = 3_600_000
const env = useBillingEnv({ tempPrefix: 'adc-scored-close-', billing: false })
let now = 0
let n = 0
let jobs: BillingJobs
/** Runs once, while the first close keeping the model is scoring (after its first batch). */
let whileScoring: (() => Promise<void>) | undefined

const row = (type: 'impression' | 'click', imp: string, ts: number, received?: number, processed?: number) =>
  ({ ...rawEvent({ key: `k${++n}`, type, imp, campaign: 'cmp_demo_cpc', ts, received, offset: n, processed }), log_partition: 0 })
const pair = (id: string, ts: number, gap: number, received?: number, processed?: number) => [
  row('impression', id, ts, received, processed),
  row('click', id, ts + gap, received === undefined ? undefined : received + gap, processed),
]
const progress = (at: number) =>
  insertRows(env.ch.client, 'adc.events_raw', [0, 1].map((p) => ({ ...rawEvent({ key: `k${++n}`, imp: `p${n}`, campaign: 'cmp_other', ts: at, received: at, offset: n }), log_partition: p })))

beforeAll(() => {
  const inner = openLocalJobStore(env.tmp())
  const store: JobStore = {
    get: (id) => inner.get(id),
    list: (limit) => inner.list(limit),
    active: () => inner.active(),
    promoteRequests: () => inner.promoteRequests(),
    submit: (job) => inner.submit(job),
    requestPromote: (r) => inner.requestPromote(r),
    onChange: (l) => inner.onChange(l),
    close: () => inner.close(),
    async update(job: Job) {
      if (job.kind === 'billing' && (job.events?.scored ?? 0) > 0 && whileScoring) {
        const run = whileScoring
        whileScoring = undefined
        await run()
      }
      return inner.update(job)
    },
  }
  jobs = createBillingJobs({ client: env.ch.client, database: 'adc', tenants: env.tenants, store, logger: pino({ level: 'silent' }), clock: () => now, reprocessBatchSize: 3 })
})
afterAll(async () => {
  await jobs?.stop()
})

async function closes() {
  const out: Job[] = []
  for (let job = await jobs.dailyTick(); job; job = await jobs.dailyTick()) {
    await jobs.idle()
    if (job.days[0] === DAY) out.push(jobs.get(job.id)!)
  }
  return out
}
const cpc = async (version: number) => (await jobs.snapshots.lines(DAY, version)).find((l) => l.campaignId === 'cmp_demo_cpc')

describe('a close keeping a promoted model, while the day is being written', () => {
  it('bills no row it did not score: a fast click written during the scoring waits for the next close, which removes it', async () => {
    // Two clicks 2 s after their impression (fast for ivt-2026.12.1 only), one a minute after.
    await insertRows(env.ch.client, 'adc.events_raw', [...pair('a1', X + 1 * H, 2_000), ...pair('a2', X + 2 * H, 2_000), ...pair('b1', X + 3 * H, 60_000)])
    now = X + 50 * H
    await progress(X + 49 * H)
    expect(await closes()).toHaveLength(1)
    now = X + 51 * H
    const re = await jobs.submitReprocess({ from: DAY, to: DAY, reason: 'stricter fast clicks', modelVersion: 'ivt-2026.12.1', requestedBy: 'test' })
    await jobs.idle()
    const promoted = (await jobs.promote(re.id, 'finance')).promotedVersions![DAY]!
    expect(await cpc(promoted)).toMatchObject({ clicks: 1, ivtClicks: 2 })

    // A late fast click makes the schedule close the day again with the promoted model; while that
    // close scores the day, the processor writes another fast click of the day, received before its cut-off.
    now = X + 53 * H
    await insertRows(env.ch.client, 'adc.events_raw', pair('a3', X + 6 * H, 2_000, X + 52 * H, X + 52 * H + 60_000))
    await progress(X + 52 * H + 30 * 60_000)
    whileScoring = () => insertRows(env.ch.client, 'adc.events_raw', pair('a5', X + 7 * H, 2_000, X + 52 * H + 40 * 60_000, X + 53 * H - 1000))
    const first = await closes()
    expect(whileScoring).toBeUndefined()
    expect(first.length).toBeGreaterThanOrEqual(1)
    // The close that scored without a5 never bills it; once the watermark reaches a5, the schedule
    // closes the day again and removes it as IVT.
    expect(await cpc(first[0]!.versions[DAY]!)).toMatchObject({ clicks: 1 })
    now = X + 54 * H
    await progress(X + 53 * H + 30 * 60_000)
    expect((await closes()).map((j) => j.reason)).toEqual([expect.stringMatching(/^re-close: 2 events/)])
    const latest = (await jobs.snapshots.latestFinal(DAY))!
    expect(await cpc(latest.version)).toMatchObject({ clicks: 1, ivtClicks: 4, ivtByReason: { sivt_fast_click: 4 } })
  })
})
