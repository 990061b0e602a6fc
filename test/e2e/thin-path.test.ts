import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { monotonicFactory } from 'ulid'
import { basicAuth, startCore, startEdge, eventually, type CoreHandle, type EdgeHandle } from './system.js'

/**
 * The walking skeleton through real components: edge in workerd (wrangler dev) → core's REST proxy
 * gateway (internal port, HTTP Basic) → embedded log → processor → chDB → metrics API.
 */
const PUB_KEY = 'pk_demo_publisher_dev'
const ADV_KEY = 'ak_demo_advertiser_dev'
const ulid = monotonicFactory()

let core: CoreHandle
let edge: EdgeHandle

beforeAll(async () => {
  core = await startCore()
  edge = await startEdge(core)
}, 240_000)

afterAll(async () => {
  await edge?.stop()
  await core?.stop()
})

interface BatchAnswer {
  accepted: number
  duplicate: number
  rejected: number
  results: { index: number; status: string; code?: string }[]
}

function impression(i: number, ts = Date.now() - 60_000) {
  return {
    eventId: ulid(), ts, adId: 'ad_1', campaignId: 'cmp_demo_cpm', publisherId: 'pub_demo',
    requestId: `req_${i}`, impressionId: `imp_${runId}_${i}`, channel: 'web', device: 'desktop', geo: 'US',
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
    ip: `198.51.100.${i % 250}`,
  }
}

// A human click comes seconds after the impression; under a second is `sivt_fast_click` (IVT).
function click(imp: ReturnType<typeof impression>, ts = Date.now() - 1000) {
  return { ...imp, eventId: ulid(), ts, clickId: `clk_${imp.impressionId}` }
}

const runId = Math.random().toString(36).slice(2, 8)

async function send(path: string, events: unknown[], key = PUB_KEY): Promise<{ status: number; body: BatchAnswer & { error?: { code: string } } }> {
  const res = await fetch(`${edge.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
  })
  return { status: res.status, body: await res.json() as BatchAnswer & { error?: { code: string } } }
}

async function realtime(campaignId: string): Promise<{ impressions: number; clicks: number; ctr: number }> {
  const from = new Date(Date.now() - 3600_000).toISOString()
  const to = new Date(Date.now() + 60_000).toISOString()
  const res = await fetch(`${core.url}/v1/metrics/realtime?campaignId=${campaignId}&from=${from}&to=${to}`, { headers: { authorization: `Bearer ${ADV_KEY}` } })
  expect(res.status).toBe(200)
  const body = await res.json() as { totals: { impressions: number; clicks: number; ctr: number } }
  return body.totals
}

describe('an impression sent to the edge shows up in the realtime metrics', () => {
  it('counts each distinct event once, retries as duplicates, loses nothing', async () => {
    const imps = Array.from({ length: 60 }, (_, i) => impression(i))
    const first = await send('/v1/events/impressions:batch', imps)
    expect(first.status).toBe(202)
    expect(first.body.accepted).toBe(60)

    // A client retry of the whole batch: every event is a duplicate, none counted again.
    const retry = await send('/v1/events/impressions:batch', imps)
    expect(retry.status).toBe(202)
    expect(retry.body.accepted).toBe(0)
    expect(retry.body.duplicate).toBe(60)
    expect(retry.body.results.every((r) => r.status === 'duplicate')).toBe(true)

    // A partial retry mixed with new events: only the new ones are accepted.
    const more = Array.from({ length: 20 }, (_, i) => impression(100 + i))
    const mixed = await send('/v1/events/impressions:batch', [...imps.slice(0, 10), ...more])
    expect(mixed.body.accepted).toBe(20)
    expect(mixed.body.duplicate).toBe(10)

    const clicks = imps.slice(0, 15).map((imp) => click(imp))
    const clickAnswer = await send('/v1/events/clicks:batch', clicks)
    expect(clickAnswer.status).toBe(202)
    expect(clickAnswer.body.accepted).toBe(15)
    expect((await send('/v1/events/clicks:batch', clicks)).body.duplicate).toBe(15)

    const totals = await eventually(() => realtime('cmp_demo_cpm'), (t) => t.impressions >= 80 && t.clicks >= 15, 60_000)
    expect(totals.impressions).toBe(80)
    expect(totals.clicks).toBe(15)
    expect(totals.ctr).toBeCloseTo(15 / 80, 6)

    // Nothing more arrives later (no delayed double count).
    await new Promise((r) => setTimeout(r, 1500))
    expect(await realtime('cmp_demo_cpm')).toMatchObject({ impressions: 80, clicks: 15 })
  })

  it('rejects bad events with reason codes and still accepts the good ones beside them', async () => {
    const good = [impression(500), impression(501)]
    const future = { ...impression(502), ts: Date.now() + 3600_000 }
    const missing = { ...impression(503), adId: undefined }
    const wrongType = { ...impression(504), ts: 'yesterday' }
    const otherPublisher = { ...impression(505), publisherId: 'pub_other' }
    const answer = await send('/v1/events/impressions:batch', [good[0], future, missing, 'not an object', wrongType, otherPublisher, good[1]])
    expect(answer.status).toBe(202)
    expect(answer.body.accepted).toBe(2)
    const byIndex = new Map(answer.body.results.map((r) => [r.index, r]))
    expect(byIndex.get(0)?.status).toBe('accepted')
    expect(byIndex.get(1)).toMatchObject({ status: 'rejected', code: 'clock_skew' })
    expect(byIndex.get(2)).toMatchObject({ status: 'rejected', code: 'invalid_event' })
    expect(byIndex.get(3)).toMatchObject({ status: 'rejected', code: 'invalid_event' })
    expect(byIndex.get(4)).toMatchObject({ status: 'rejected', code: 'invalid_event' })
    expect(byIndex.get(5)).toMatchObject({ status: 'rejected', code: 'publisher_mismatch' })
    expect(byIndex.get(6)?.status).toBe('accepted')

    // The first test left exactly 80; the two good events here make 82, and the rejected ones nothing.
    const after = await eventually(() => realtime('cmp_demo_cpm'), (t) => t.impressions >= 82, 30_000)
    expect(after.impressions).toBe(82)
  })

  it('answers whole-request errors with their status and code', async () => {
    const badJson = await fetch(`${edge.url}/v1/events/impressions:batch`, {
      method: 'POST', headers: { authorization: `Bearer ${PUB_KEY}`, 'content-type': 'application/json' }, body: '{"events": [',
    })
    expect(badJson.status).toBe(400)
    expect(((await badJson.json()) as { error: { code: string } }).error.code).toBe('bad_json')

    const unknownKey = await send('/v1/events/impressions:batch', [impression(600)], 'pk_nobody_knows_this')
    expect(unknownKey.status).toBe(401)
    expect(unknownKey.body.error?.code).toBe('unauthorized')

    const huge = await fetch(`${edge.url}/v1/events/impressions:batch`, {
      method: 'POST', headers: { authorization: `Bearer ${PUB_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: [impression(601)], pad: 'x'.repeat(1024 * 1024 + 10) }),
    })
    expect(huge.status).toBe(413)

    const wrongType = await fetch(`${edge.url}/v1/events/impressions:batch`, {
      method: 'POST', headers: { authorization: `Bearer ${PUB_KEY}`, 'content-type': 'text/csv' }, body: 'a,b',
    })
    expect(wrongType.status).toBe(415)
  })

  it('refuses the metrics API without an advertiser key', async () => {
    const res = await fetch(`${core.url}/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=${new Date(Date.now() - 60_000).toISOString()}&to=${new Date().toISOString()}`)
    expect(res.status).toBe(401)
  })
})

describe("core's front door to the log", () => {
  const forged = () => ({
    method: 'POST',
    headers: { 'content-type': 'application/vnd.kafka.json.v2+json' },
    body: JSON.stringify({ records: [{ key: 'pub_demo', value: { v: 1, kind: 'edge_stats', forged: true } }] }),
  })

  it('the public port serves no REST proxy, no /metrics and no edge config', async () => {
    for (const topic of ['ad-events', 'edge-stats']) {
      expect((await fetch(`${core.url}/topics/${topic}`, forged())).status).toBe(404)
      const withCreds = forged()
      expect((await fetch(`${core.url}/topics/${topic}`, { ...withCreds, headers: { ...withCreds.headers, authorization: basicAuth(core.proxyAuth) } })).status).toBe(404)
    }
    expect((await fetch(`${core.url}/metrics`)).status).toBe(404)
    expect((await fetch(`${core.url}/v1/internal/edge-config`, { headers: { authorization: 'Bearer edge_sync_dev' } })).status).toBe(404)
    expect((await fetch(`${core.url}/healthz`)).status).toBe(200)
  })

  it('the internal port needs the REST proxy credentials: none or wrong 401, right 200', async () => {
    const none = await fetch(`${core.internalUrl}/topics/edge-stats`, forged())
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic/)
    expect(await none.json()).toMatchObject({ error_code: 40101 })
    const wrong = forged()
    const wrongRes = await fetch(`${core.internalUrl}/topics/edge-stats`, { ...wrong, headers: { ...wrong.headers, authorization: basicAuth({ ...core.proxyAuth, password: 'guessed-password' }) } })
    expect(wrongRes.status).toBe(401)
    const right = forged()
    const rightRes = await fetch(`${core.internalUrl}/topics/edge-stats`, { ...right, headers: { ...right.headers, authorization: basicAuth(core.proxyAuth) } })
    expect(rightRes.status).toBe(200)
  })

  it('the internal port serves /metrics and the edge config', async () => {
    const metrics = await fetch(`${core.internalUrl}/metrics`)
    expect(metrics.status).toBe(200)
    expect(await metrics.text()).toContain('adc_')
    expect((await fetch(`${core.internalUrl}/v1/internal/edge-config`, { headers: { authorization: 'Bearer edge_sync_dev' } })).status).toBe(200)
    expect((await fetch(`${core.internalUrl}/v1/internal/edge-config`)).status).toBe(401)
  })
})
