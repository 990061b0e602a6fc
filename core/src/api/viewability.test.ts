import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { DEMO_DEFAULTS } from '../tenants/tenant-store.js'
import { insertRollup, insertRows, rawEvent } from '../testing/api.js'
import { useApiEnv } from '../testing/api-env.js'

/**
 * Viewability and the vCPM price through the API: realtime metrics from the rollups, the billing
 * job from raw events, and the latency contract's extra fields. Own engine and tenants.
 */
const DAY = '2026-11-19'
const D = Date.parse(`${DAY}T00:00:00Z`)
const NOW = Date.parse('2026-11-22T12:00:00Z')
const M = 60_000
const H = 60 * M
const ADMIN = DEMO_DEFAULTS.adminKey
const ADV = DEMO_DEFAULTS.advertiserKey
const PUB = DEMO_DEFAULTS.publisherKey

const env = useApiEnv({ tempPrefix: 'adc-view-api-', clock: () => NOW, app: () => ({ registry: new Registry(), edgeSyncKey: 'edge_sync_test' }) })

async function call(path: string, key: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers)
  headers.set('Authorization', `Bearer ${key}`)
  const res = await env.app.request(path, { ...init, headers })
  return { status: res.status, body: (await res.json()) as any }
}
const post = (path: string, key: string, body: unknown) => call(path, key, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })

describe('a vCPM campaign', () => {
  it('is created through the admin API with its price per thousand viewable impressions', async () => {
    const res = await post('/v1/admin/campaigns', ADMIN, { id: 'cmp_vcpm', advertiserId: 'adv_demo', pricing: { model: 'vcpm', priceMicros: 5_000_000 } })
    expect(res.status).toBe(201)
    expect(res.body.pricing).toEqual({ model: 'vcpm', priceMicros: 5_000_000 })
    expect((await post('/v1/admin/campaigns', ADMIN, { id: 'cmp_bad', advertiserId: 'adv_demo', pricing: { model: 'cpv', priceMicros: 1 } })).status).toBe(400)
  })
})

describe('realtime viewability', () => {
  it('reports measured and viewable impressions and the viewability rate, and prices vCPM on viewable ones', async () => {
    await insertRollup(env.ch.client, 'adc', [
      { minute: D + 60 * M, campaign: 'cmp_vcpm', geo: 'US', impressions: 3, measured: 2, viewable: 2, users: ['a', 'b', 'c'] },
      { minute: D + 61 * M, campaign: 'cmp_vcpm', geo: 'DE', impressions: 2, measured: 2, viewable: 0, users: ['d'] },
      { minute: D + 60 * M, campaign: 'cmp_demo_cpm', impressions: 4, users: ['x'] },
    ])
    const { status, body } = await call(`/v1/metrics/realtime?campaignId=cmp_vcpm&from=${DAY}T00:00:00Z&to=${DAY}T06:00:00Z&dimensions=geo`, ADV)
    expect(status).toBe(200)
    expect(body.pricing).toEqual({ model: 'vcpm', priceMicros: 5_000_000 })
    expect(body.totals).toMatchObject({ impressions: 5, measuredImpressions: 4, viewableImpressions: 2, viewabilityRate: 0.5, spendMicros: 10_000 })
    expect(body.series.map((p: any) => [p.geo, p.measuredImpressions, p.viewableImpressions, p.viewabilityRate])).toEqual([['US', 2, 2, 1], ['DE', 2, 0, 0]])
    const cpm = await call(`/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=${DAY}T00:00:00Z&to=${DAY}T06:00:00Z`, ADV)
    // Nothing measured: the rate is unknown, not 0 %.
    expect(cpm.body.totals).toMatchObject({ impressions: 4, measuredImpressions: 0, viewableImpressions: 0, viewabilityRate: null, spendMicros: 8000 })
  })
})

describe('billing viewability', () => {
  it('counts measured and viewable billable impressions per campaign in the final snapshot and bills vCPM on viewable ones', async () => {
    const view = (key: string, hour: number, v: { viewable?: boolean; viewMethod?: string }, extra: Parameters<typeof rawEvent>[0] extends infer E ? Partial<E> : never = {}) =>
      rawEvent({ key, imp: `imp_${key}`, campaign: 'cmp_vcpm', ts: D + hour * H, ...v, ...extra })
    await insertRows(env.ch.client, 'adc.events_raw', [
      view('v1', 1, { viewable: true, viewMethod: 'mrc_50_1s' }),
      view('v2', 2, { viewable: true, viewMethod: 'client' }),
      view('v3', 3, { viewable: false, viewMethod: 'mrc_50_1s' }),
      view('v4', 4, {}),
      // A later copy of v1's impression (same impressionId): a duplicate, not a second viewable impression.
      view('v1b', 5, { viewable: true, viewMethod: 'mrc_50_1s' }, { imp: 'imp_v1', reason: 'duplicate_impression' }),
      // A viewable bot impression: invalid, never billed.
      view('v5', 6, { viewable: true, viewMethod: 'mrc_50_1s' }, { reason: 'givt_known_bot', ivtScore: 1, ivtReasons: ['givt_known_bot'] }),
      rawEvent({ key: 'p1', imp: 'imp_p1', campaign: 'cmp_demo_cpm', ts: D + H, viewable: true, viewMethod: 'mrc_50_1s' }),
      rawEvent({ key: 'p2', imp: 'imp_p2', campaign: 'cmp_demo_cpm', ts: D + H }),
    ])
    const job = await post('/v1/billing/jobs', ADMIN, { day: DAY })
    expect(job.status).toBe(202)
    await env.billing.idle()
    const daily = await call(`/v1/billing/daily?day=${DAY}`, ADV)
    expect(daily.status).toBe(200)
    const byId = Object.fromEntries(daily.body.campaigns.map((c: any) => [c.campaignId, c]))
    expect(byId.cmp_vcpm).toMatchObject({
      pricingModel: 'vcpm', impressions: 4, measuredImpressions: 3, viewableImpressions: 2, viewabilityRate: 2 / 3, ivtImpressions: 1, duplicates: 1,
      spendMicros: 10_000,
    })
    expect(byId.cmp_demo_cpm).toMatchObject({ pricingModel: 'cpm', impressions: 2, measuredImpressions: 1, viewableImpressions: 1, viewabilityRate: 1, spendMicros: 4000 })
    expect(daily.body.totals).toMatchObject({ impressions: 6, measuredImpressions: 4, viewableImpressions: 3, spendMicros: 14_000 })
    const settlement = await call(`/v1/settlement/daily?day=${DAY}`, PUB)
    const line = settlement.body.lines.find((l: any) => l.campaignId === 'cmp_vcpm')
    expect(line).toMatchObject({ pricingModel: 'vcpm', impressions: 4, viewableImpressions: 2, amountMicros: 10_000 })
  })
})

describe('GET /v1/metrics/campaigns/{id}/latency', () => {
  it('also answers the p95 ingest latency and the pipeline lag in seconds', async () => {
    await insertRows(env.ch.client, 'adc.events_raw', Array.from({ length: 20 }, (_, i) =>
      rawEvent({ key: `lat${i}`, imp: `impl${i}`, campaign: 'cmp_demo_cpc', ts: NOW - 10 * M, received: NOW - 9 * M, processed: NOW - 9 * M + (i + 1) * 100 })))
    await insertRollup(env.ch.client, 'adc', [{ minute: NOW - 9 * M, campaign: 'cmp_demo_cpc', impressions: 20, lastReceived: NOW - 9 * M }])
    const { status, body } = await call('/v1/metrics/campaigns/cmp_demo_cpc/latency?windowMinutes=30', ADV)
    expect(status).toBe(200)
    expect(body.events).toBe(20)
    // processed - received is 100, 200, ... 2000 ms: p95 lies between the 19th and 20th value.
    expect(body.ingestP95Ms).toBeGreaterThanOrEqual(1900)
    expect(body.ingestP95Ms).toBeLessThanOrEqual(2000)
    expect(body.pipelineLagSeconds).toBe(540)
    const empty = await call('/v1/metrics/campaigns/cmp_vcpm/latency?windowMinutes=5', ADV)
    expect(empty.body).toMatchObject({ events: 0, ingestP95Ms: null })
  })
})
