import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createApiApp } from '../api/app.js'
import { insertRows, rawEvent } from '../testing/api.js'
import { DEMO_DEFAULTS } from '../tenants/tenant-store.js'
import { useBillingEnv } from '../testing/billing-env.js'

/**
 * Closing a day: a scheduled close at T+1 is marked incomplete; the day is closed again once the
 * processing watermark passed its end plus the lateness horizon (24 h + 1 h), taking the late events
 * in as a new version with its adjustments; and again whenever events of the day arrive after that.
 * No version is ever edited, and the billing API says which version is shown, why, and what changed.
 */
const DAY = '2026-11-10'
const X = Date.parse(`${DAY}T00:00:00Z`)
const H = 3_600_000
const env = useBillingEnv({ tempPrefix: 'adc-close-', clock: () => now })
let now = 0
let n = 0

const imp = (ts: number, received: number, partition = 0, processed?: number) => ({
  ...rawEvent({ key: `k${++n}`, imp: `imp${n}`, campaign: 'cmp_demo_cpm', ts, received, offset: n, processed }),
  log_partition: partition,
})
/** The processor has read both partitions up to `at` (traffic of another campaign, the next day). */
const progress = (at: number) => insertRows(env.ch.client, 'adc.events_raw', [0, 1].map((p) => ({ ...imp(at, at, p), campaign_id: 'cmp_other' })))

/** Runs the schedule until it has nothing to do; returns the close of DAY, if any (empty earlier days close too). */
async function tick() {
  let ours
  for (let job = await env.billing.dailyTick(); job; job = await env.billing.dailyTick()) {
    await env.billing.idle()
    if (job.days[0] === DAY) ours = job
  }
  return ours
}

describe('closing a day', () => {
  it('closes at T+1 as incomplete, again after the lateness horizon with the late events as adjustments, and again for events later still', async () => {
    await insertRows(env.ch.client, 'adc.events_raw', [imp(X + 1 * H, X + 1 * H), imp(X + 2 * H, X + 2 * H, 1)])
    now = X + 24 * H + 40 * 60_000
    await progress(now - 5 * 60_000)
    const first = await tick()
    expect(first?.days).toEqual([DAY])
    let versions = await env.billing.snapshots.versions(DAY)
    expect(versions).toMatchObject([{ version: 1, status: 'final', complete: false, supersedes: 0 }])
    expect(versions[0]!.reason).toMatch(/scheduled close/)
    expect((await env.billing.snapshots.lines(DAY, 1))[0]).toMatchObject({ impressions: 2 })

    // An event of the day reaches the edge 20 h late; the watermark is not past the horizon yet.
    now = X + 45 * H
    await insertRows(env.ch.client, 'adc.events_raw', [imp(X + 23 * H, X + 44 * H)])
    await progress(now - 60_000)
    expect(await tick()).toBeUndefined()

    // The watermark passes the day end + 25 h: the complete close takes the late event in.
    now = X + 50 * H
    await progress(X + 49 * H)
    expect((await tick())?.days).toEqual([DAY])
    versions = await env.billing.snapshots.versions(DAY)
    expect(versions.at(-1)).toMatchObject({ version: 2, complete: true, supersedes: 1 })
    expect((await env.billing.snapshots.lines(DAY, 2))[0]).toMatchObject({ impressions: 3 })
    expect((await env.billing.snapshots.lines(DAY, 1))[0]).toMatchObject({ impressions: 2 })
    expect(await tick()).toBeUndefined()

    // An event of the day written later still (a spool delivered it late): a re-close, never an edit.
    now = X + 52 * H
    await insertRows(env.ch.client, 'adc.events_raw', [imp(X + 23 * H + 30 * 60_000, X + 49 * H + 30 * 60_000, 1, X + 51 * H)])
    await progress(X + 51 * H)
    const again = await tick()
    expect(again?.reason).toMatch(/re-close: 1 events/)
    expect((await env.billing.snapshots.versions(DAY)).at(-1)).toMatchObject({ version: 3, complete: true, supersedes: 2 })
    expect(await tick()).toBeUndefined()

    const app = createApiApp({ clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: pino({ level: 'silent' }), clock: () => now })
    const res = await app.request(`/v1/billing/daily?day=${DAY}`, { headers: { Authorization: `Bearer ${DEMO_DEFAULTS.advertiserKey}` } })
    const body = (await res.json()) as any
    expect(body).toMatchObject({ final: true, version: 3, complete: true, supersedes: 2, finalAt: expect.any(Number), reason: expect.stringMatching(/re-close/) })
    expect(body.adjustments).toEqual([{ campaignId: 'cmp_demo_cpm', impressions: 1, clicks: 0, ivtImpressions: 0, ivtClicks: 0, duplicates: 0, orphanClicks: 0, spendMicros: 2000 }])
    expect(body.versions.map((v: any) => [v.version, v.supersedes, v.complete])).toEqual([[1, null, false], [2, 1, true], [3, 2, true]])
  })
})

describe('closing a day after a promotion', () => {
  it('closes again for an event written after the promoted candidate was computed, even though it was written before the promotion', async () => {
    const DAY2 = '2026-11-20'
    const Y = Date.parse(`${DAY2}T00:00:00Z`)
    const closes = async () => {
      const out = []
      for (let job = await env.billing.dailyTick(); job; job = await env.billing.dailyTick()) {
        await env.billing.idle()
        if (job.days[0] === DAY2) out.push(job)
      }
      return out
    }
    await insertRows(env.ch.client, 'adc.events_raw', [imp(Y + 1 * H, Y + 1 * H)])
    now = Y + 50 * H
    await progress(Y + 49 * H)
    expect(await closes()).toHaveLength(1)
    expect((await env.billing.snapshots.latestFinal(DAY2))).toMatchObject({ version: 1, complete: true })

    // A reprocess computes its candidate from what is written when it runs.
    now = Y + 51 * H
    const job = await env.billing.submitReprocess({ from: DAY2, to: DAY2, reason: 'model check', modelVersion: 'ivt-2026.11.1', requestedBy: 'test' })
    await env.billing.idle()
    expect(env.billing.get(job.id)).toMatchObject({ status: 'done' })

    // A spool delivers an event of the day received before the candidate's cut-off, written after the
    // candidate was computed, and before the candidate is promoted.
    await insertRows(env.ch.client, 'adc.events_raw', [imp(Y + 23 * H, Y + 50 * H, 1, Y + 52 * H)])
    now = Y + 53 * H
    const promoted = await env.billing.promote(job.id, 'test')
    expect((await env.billing.snapshots.lines(DAY2, promoted.promotedVersions![DAY2]!))[0]).toMatchObject({ impressions: 1 })

    // The promoted version does not hold it: the schedule must close the day again, or it is never billed.
    await progress(Y + 52 * H)
    const after = await closes()
    expect(after.map((j) => j.reason)).toEqual([expect.stringMatching(/re-close: 1 events/)])
    const latest = (await env.billing.snapshots.latestFinal(DAY2))!
    expect((await env.billing.snapshots.lines(DAY2, latest.version))[0]).toMatchObject({ impressions: 2 })
  })
})

describe('closing a day while a batch of it is being written', () => {
  it('closes again for an event whose batch was built before the close and became visible after it', async () => {
    const DAY3 = '2026-11-16'
    const Z = Date.parse(`${DAY3}T00:00:00Z`)
    const closes = async () => {
      const out = []
      for (let job = await env.billing.dailyTick(); job; job = await env.billing.dailyTick()) {
        await env.billing.idle()
        if (job.days[0] === DAY3) out.push(job)
      }
      return out
    }
    await insertRows(env.ch.client, 'adc.events_raw', [imp(Z + 1 * H, Z + 1 * H)])
    now = Z + 50 * H
    await progress(Z + 49 * H)
    expect(await closes()).toHaveLength(1)
    const v1 = (await env.billing.snapshots.latestFinal(DAY3))!
    expect(v1).toMatchObject({ complete: true, receivedBefore: Z + 50 * H })

    // The processor built a batch a second before the close started (its rows carry that time) and
    // ClickHouse acknowledged it only after the close had read the day: the version does not hold the
    // event, received before its cut-off and written before its time.
    await insertRows(env.ch.client, 'adc.events_raw', [imp(Z + 22 * H, Z + 49 * H + 50 * 60_000, 0, Z + 50 * H - 1000)])
    now = Z + 52 * H
    await progress(Z + 51 * H)
    const after = await closes()
    expect(after.map((j) => j.reason)).toEqual([expect.stringMatching(/re-close: 1 events/)])
    const latest = (await env.billing.snapshots.latestFinal(DAY3))!
    expect((await env.billing.snapshots.lines(DAY3, latest.version))[0]).toMatchObject({ impressions: 2 })
    expect(await closes()).toEqual([])
  })
})
