import pino from 'pino'
import { beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_RETENTION } from '../clickhouse/retention.js'
import { DEMO_DEFAULTS } from '../tenants/tenant-store.js'
import { createApiApp } from './app.js'
import { insertRollup, insertRows, type RollupFixture } from '../testing/api.js'
import { useApiEnv } from '../testing/api-env.js'

/**
 * Reads past the minute rollups' retention, on a real engine whose TTLs have dropped the old minute
 * rows (the wall clock drives ClickHouse's TTL, so the fixture is placed relative to it).
 */
const M = 60_000
const H = 60 * M
const DAY = 24 * H
const G = Math.floor(Date.now() / H) * H
const NOW = G + 20 * M
const ADV = DEMO_DEFAULTS.advertiserKey
const ADMIN = DEMO_DEFAULTS.adminKey
const CMP = 'cmp_demo_cpm'

/** One row per minute cell, as the processor writes them: the raw events the totals must add up to. */
const hb = G - 35 * DAY // the hour holding the minute rollups' TTL bound
const EVENTS: Array<RollupFixture & { name: string }> = [
  { name: 'e1', minute: G - 40 * DAY + 5 * M, campaign: CMP, impressions: 2, users: ['u1'] },
  { name: 'e2', minute: G - 40 * DAY + 50 * M, campaign: CMP, impressions: 1, clicks: 1, users: ['u2'], geo: 'DE' },
  { name: 'e3', minute: G - 40 * DAY + 2 * H + 10 * M, campaign: CMP, impressions: 1, users: ['u1'] },
  { name: 'e4', minute: hb - 30 * M, campaign: CMP, impressions: 1, users: ['u4'] },
  { name: 'e5', minute: hb + 10 * M, campaign: CMP, impressions: 1, users: ['u5'] },
  { name: 'e6', minute: hb + 50 * M, campaign: CMP, impressions: 1, users: ['u1'] },
  { name: 'e7', minute: hb + 90 * M, campaign: CMP, impressions: 1, users: ['u1'] },
  { name: 'e8', minute: G - 30 * DAY + 10 * M, campaign: CMP, impressions: 3, clicks: 1, users: ['u3'] },
  { name: 'e9', minute: G - 30 * DAY + 2 * H + 5 * M, campaign: CMP, impressions: 1, users: ['u7'] },
  { name: 'e10', minute: G - 30 * DAY + 2 * H + 40 * M, campaign: CMP, impressions: 5, users: ['u8'] },
]
/** What the raw events add up to over [from, to): the truth any read must give back. */
function truth(from: number, to: number) {
  const inRange = EVENTS.filter((e) => e.minute >= from && e.minute < to)
  return {
    impressions: inRange.reduce((s, e) => s + (e.impressions ?? 0), 0),
    clicks: inRange.reduce((s, e) => s + (e.clicks ?? 0), 0),
    uniques: new Set(inRange.flatMap((e) => e.users ?? [])).size,
  }
}
const iso = (ms: number) => new Date(ms).toISOString()

const env = useApiEnv({
  tempPrefix: 'adc-retention-api-', clock: () => NOW, retention: DEFAULT_RETENTION,
  app: () => ({ minuteRollupDays: DEFAULT_RETENTION.minuteRollupDays }),
})
async function call(path: string, key: string) {
  const res = await env.app.request(path, { headers: { Authorization: `Bearer ${key}` } })
  return { status: res.status, body: (await res.json()) as any }
}

beforeAll(async () => {
  await insertRollup(env.ch.client, 'adc', EVENTS)
  const old = EVENTS.find((e) => e.name === 'e2')!
  await insertRows(env.ch.client, 'adc.rollup_ivt_minute', [
    { minute: iso(old.minute).slice(0, 19).replace('T', ' '), campaign_id: CMP, publisher_id: 'pub_demo', event_type: 'impression', reason: 'givt_known_bot', events: 4 },
  ])
  await insertRows(env.ch.client, 'adc.edge_stats_minute', [
    { minute: iso(old.minute).slice(0, 19).replace('T', ' '), publisher_id: 'pub_demo', received: 9, accepted: 7, rejected: 1, duplicate: 1, rejected_by_reason: { clock_skew: 1 } },
  ])
  await env.ch.client.command({ query: 'OPTIMIZE TABLE adc.edge_stats_minute FINAL' })
  await env.ch.client.command({ query: 'OPTIMIZE TABLE adc.rollup_minute FINAL' })
  await env.ch.client.command({ query: 'OPTIMIZE TABLE adc.rollup_ivt_minute FINAL' })
}, 120_000)

describe('metrics past the minute rollups retention', () => {
  it('the engine dropped the old minute rows (the premise of every test below)', async () => {
    const rs = await env.ch.client.query({ query: `SELECT count() AS n FROM adc.rollup_minute WHERE minute < now() - INTERVAL 35 DAY`, format: 'JSONEachRow' })
    expect(Number((await rs.json<{ n: string }>())[0]!.n)).toBe(0)
    const hours = await env.ch.client.query({ query: `SELECT sum(impressions) AS i FROM adc.rollup_hour`, format: 'JSONEachRow' })
    expect(Number((await hours.json<{ i: string }>())[0]!.i)).toBe(truth(0, Infinity).impressions)
  })

  it('reports hours only rollup_hour still holds, and a range straddling the bound adds up to the raw events, uniques merged once', async () => {
    const from = G - 41 * DAY + 7 * M // expired and not on the hour: widened to its hour
    const to = G - 30 * DAY + 2 * H + 30 * M // within retention: its partial hour is read per minute
    const { status, body } = await call(`/v1/metrics/realtime?campaignId=${CMP}&from=${iso(from)}&to=${iso(to)}&granularity=hour`, ADV)
    expect(status).toBe(200)
    expect(body.granularity).toBe('hour')
    expect(body.from).toBe(G - 41 * DAY)
    expect(body.to).toBe(to)
    expect(body.totals).toMatchObject(truth(G - 41 * DAY, to))
    const at = (t: number) => body.series.find((p: any) => p.t === t)
    expect(at(G - 40 * DAY)).toMatchObject({ impressions: 3, clicks: 1, uniques: 2 })
    expect(at(G - 30 * DAY + 2 * H)).toMatchObject({ impressions: 1, uniques: 1 })
    expect(body.series.reduce((s: number, p: any) => s + p.impressions, 0)).toBe(truth(G - 41 * DAY, to).impressions)
    expect(body.ivtByReason).toEqual([{ reason: 'givt_known_bot', eventType: 'impression', events: 4 }])
  })

  it('serves a minute request reaching past the retention at hour granularity, saying so', async () => {
    const from = G - 36 * DAY
    const to = G - 34 * DAY
    const { status, body } = await call(`/v1/metrics/realtime?campaignId=${CMP}&from=${iso(from)}&to=${iso(to)}`, ADV)
    expect(status).toBe(200)
    expect(body.granularity).toBe('hour')
    // u1 is in an hour read from rollup_hour and in one read from rollup_minute: one user.
    expect(body.totals).toMatchObject(truth(from, to))
    expect(body.totals.uniques).toBe(3)
    expect(body.series.map((p: any) => [p.t, p.impressions])).toEqual([
      [hb - H, 1],
      [hb, 2],
      [hb + H, 1],
    ])
  })

  it('keeps minute granularity, from the minute rows, within the retention', async () => {
    const from = G - 30 * DAY
    const to = G - 30 * DAY + 3 * H
    const { body } = await call(`/v1/metrics/realtime?campaignId=${CMP}&from=${iso(from)}&to=${iso(to)}`, ADV)
    expect(body.granularity).toBe('minute')
    expect(body.series.map((p: any) => [p.t, p.impressions])).toEqual([
      [G - 30 * DAY + 10 * M, 3],
      [G - 30 * DAY + 2 * H + 5 * M, 1],
      [G - 30 * DAY + 2 * H + 40 * M, 5],
    ])
    expect(body.totals).toMatchObject(truth(from, to))
  })

  it('reads whole hours from rollup_hour and the partial hours at both ends per minute, within the retention', async () => {
    const from = G - 30 * DAY + 5 * M
    const to = G - 30 * DAY + 2 * H + 30 * M
    const { body } = await call(`/v1/metrics/realtime?campaignId=${CMP}&from=${iso(from)}&to=${iso(to)}&granularity=hour`, ADV)
    expect([body.from, body.to]).toEqual([from, to])
    expect(body.totals).toMatchObject(truth(from, to))
    const narrower = await call(`/v1/metrics/realtime?campaignId=${CMP}&from=${iso(G - 30 * DAY + 15 * M)}&to=${iso(to)}&granularity=hour`, ADV)
    expect(narrower.body.totals).toMatchObject(truth(G - 30 * DAY + 15 * M, to))
  })

  it('reconciles a day whose minute rows have expired from the hourly rollup', async () => {
    const day = iso(G - 40 * DAY).slice(0, 10)
    const start = Date.parse(`${day}T00:00:00Z`)
    const { status, body } = await call(`/v1/reports/reconcile/${day}`, ADMIN)
    expect(status).toBe(200)
    const cmp = body.campaigns.find((c: any) => c.campaignId === CMP)
    expect(cmp.stream).toMatchObject({ impressions: truth(start, start + DAY).impressions, clicks: truth(start, start + DAY).clicks })
  })

  it('keeps what the edge saw in the accounting report after the minute edge stats expired', async () => {
    const day = iso(G - 40 * DAY + 50 * M).slice(0, 10)
    const { status, body } = await call(`/v1/reports/accounting?day=${day}`, ADMIN)
    expect(status).toBe(200)
    const pub = body.publishers.find((p: any) => p.publisherId === 'pub_demo')
    expect(pub.edge).toEqual({ received: 9, accepted: 7, rejected: 1, duplicate: 1, rejectedByReason: { clock_skew: 1 } })
  })
})

describe('reads and recomputations past what the engine keeps', () => {
  // The same engine and rows, read by an app whose retention is shorter: the hourly rollups kept 38
  // days, the raw events 45. The rows older than that are still in this engine, so an answer that
  // read them would show here; a real engine has dropped them and would answer zeros.
  const SHORT = { hourlyRollupDays: 38, rawDays: 45, badRowsDays: 45 }
  const shortApp = () => createApiApp({ clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: pino({ level: 'silent' }), clock: () => NOW, minuteRollupDays: 35, retention: SHORT })
  const hourKept = Math.ceil((NOW - 38 * DAY + H) / H) * H
  async function request(app: ReturnType<typeof createApiApp>, path: string, key: string, body?: unknown) {
    const res = await app.request(path, body === undefined ? { headers: { Authorization: `Bearer ${key}` } } : { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: (await res.json()) as any }
  }

  it('answers metrics for the part of a range still kept, and says where it starts', async () => {
    const from = G - 41 * DAY
    const to = G - 30 * DAY + 3 * H
    const { status, body } = await request(shortApp(), `/v1/metrics/realtime?campaignId=${CMP}&from=${iso(from)}&to=${iso(to)}&granularity=hour`, ADV)
    expect(status).toBe(200)
    expect(body.from).toBe(hourKept)
    expect(body.to).toBe(to)
    // e1-e3 (40 days old) lie before the bound: not in the totals, though this engine still has them.
    expect(truth(from, to).impressions).toBeGreaterThan(truth(hourKept, to).impressions)
    expect(body.totals).toMatchObject(truth(hourKept, to))
  })

  it('refuses (410 beyond_retention) a metrics range wholly before what is kept', async () => {
    const { status, body } = await request(shortApp(), `/v1/metrics/realtime?campaignId=${CMP}&from=${iso(G - 41 * DAY)}&to=${iso(G - 39 * DAY)}&granularity=hour`, ADV)
    expect(status).toBe(410)
    expect(body.error.code).toBe('beyond_retention')
  })

  it('refuses the reconcile and accounting reports of a day the hourly rollups or raw events no longer hold', async () => {
    const day = iso(G - 40 * DAY).slice(0, 10)
    for (const path of [`/v1/reports/reconcile/${day}`, `/v1/reports/accounting?day=${day}`]) {
      const { status, body } = await request(shortApp(), path, ADMIN)
      expect(status, path).toBe(410)
      expect(body.error.code).toBe('beyond_retention')
      expect(body.error.message).toContain('RETENTION_HOURLY_ROLLUP_DAYS')
    }
    // The same reports with the default retention read the day (the tests above).
    expect((await request(env.app, `/v1/reports/reconcile/${day}`, ADMIN)).status).toBe(200)
  })

  it('refuses to close or reprocess a day whose raw events (or the days around it) may be gone, and queues nothing', async () => {
    const jobs = env.billing.list().length
    const old = iso(NOW - 44 * DAY).slice(0, 10) // within 45 days, but the close also reads the 3 days before it
    const close = await request(shortApp(), '/v1/billing/jobs', ADMIN, { day: old })
    expect(close.status).toBe(410)
    expect(close.body.error).toMatchObject({ code: 'beyond_retention' })
    expect(close.body.error.message).toContain('RETENTION_RAW_DAYS')
    const reprocess = await request(shortApp(), '/v1/reprocess', ADMIN, { from: old, to: iso(NOW - 43 * DAY).slice(0, 10), reason: 'x', modelVersion: 'ivt-2026.12.1' })
    expect(reprocess.status).toBe(410)
    expect(reprocess.body.error.code).toBe('beyond_retention')
    expect(env.billing.list().length).toBe(jobs)
  })

  it('refuses a reprocess whose IVT decisions would be past their own retention as they are written', async () => {
    const jobs = env.billing.list().length
    const shorter = createApiApp({ clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: pino({ level: 'silent' }), clock: () => NOW, minuteRollupDays: 35, retention: { ...SHORT, ivtDecisionsDays: 20 } })
    const day = iso(NOW - 25 * DAY).slice(0, 10) // raw events kept (45 days), decisions kept 20
    const reprocess = await request(shorter, '/v1/reprocess', ADMIN, { from: day, to: day, reason: 'x', modelVersion: 'ivt-2026.12.1' })
    expect(reprocess.status).toBe(410)
    expect(reprocess.body.error.code).toBe('beyond_retention')
    expect(reprocess.body.error.message).toContain('RETENTION_IVT_DAYS')
    expect(env.billing.list().length).toBe(jobs)
  })

  it('refuses to close again, past the decisions\' retention, a day whose final a reprocess promoted (its model would score it into decisions that are gone)', async () => {
    const shorter = createApiApp({ clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: pino({ level: 'silent' }), clock: () => NOW, minuteRollupDays: 35, retention: { ...SHORT, ivtDecisionsDays: 20 } })
    const day = iso(NOW - 26 * DAY).slice(0, 10)
    await env.billing.snapshots.write(day, [], { status: 'final', jobId: 'promoted-test', modelVersion: 'ivt-2026.12.1', createdAt: NOW - 20 * DAY })
    const jobs = env.billing.list().length
    const close = await request(shorter, '/v1/billing/jobs', ADMIN, { day })
    expect(close.status).toBe(410)
    expect(close.body.error.code).toBe('beyond_retention')
    expect(close.body.error.message).toContain('ivt-2026.12.1')
    expect(env.billing.list().length).toBe(jobs)
  })
})
