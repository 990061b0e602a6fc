import { Hono } from 'hono'
import pino from 'pino'
import { Registry } from 'prom-client'
import { beforeAll, describe, expect, it } from 'vitest'
import { DEMO_DEFAULTS, hashApiKey } from '../tenants/tenant-store.js'
import { createErrorHandler } from './errors.js'
import { API_MAX_BODY_BYTES, createApiApp } from './app.js'
import { FIXTURE_DAY, fixtureDay, insertRollup, insertRows, rawEvent } from '../testing/api.js'
import { useApiEnv } from '../testing/api-env.js'

const NOW = Date.parse('2026-11-22T12:00:00Z')
const D = Date.parse(`${FIXTURE_DAY}T00:00:00Z`)
const M = 60_000
const H = 60 * M
const ADMIN = DEMO_DEFAULTS.adminKey
const ADV = DEMO_DEFAULTS.advertiserKey
const PUB = DEMO_DEFAULTS.publisherKey

const env = useApiEnv({ tempPrefix: 'adc-api-', clock: () => NOW, app: () => ({ registry: new Registry(), edgeSyncKey: 'edge_sync_test' }) })

async function call(path: string, key?: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers)
  if (key) headers.set('Authorization', `Bearer ${key}`)
  const res = await env.app.request(path, { ...init, headers })
  const text = await res.text()
  let body: any = text
  try {
    body = JSON.parse(text)
  } catch {
    /* CSV or text */
  }
  return { status: res.status, body, headers: res.headers }
}
const post = (path: string, key: string | undefined, body: unknown) =>
  call(path, key, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })

beforeAll(async () => {
  await insertRows(env.ch.client, 'adc.events_raw', fixtureDay())
  // Only booked campaigns bill: the correction fixture's campaign is booked (at no price).
  await env.tenants.createAdvertiser({ id: 'adv_corr', name: 'Corrections' })
  await env.tenants.createCampaign({ id: 'cmp_corr', advertiserId: 'adv_corr', pricing: { model: 'cpc', priceMicros: 0 } })
  const corr = { campaign: 'cmp_corr', publisher: 'pub_corr', imp: 'impc1' }
  await insertRows(env.ch.client, 'adc.events_raw', [
    rawEvent({ ...corr, key: 'ce2', type: 'click', ts: D + 8 * H, reason: 'orphan_click', processed: D + 8 * H + 60_000 }),
    rawEvent({ ...corr, key: 'ce2', type: 'click', ts: D + 8 * H, reason: 'orphan_click', sign: -1, processed: D + 8 * H + 120_000 }),
    rawEvent({ ...corr, key: 'ce2', type: 'click', ts: D + 8 * H, processed: D + 8 * H + 120_000 }),
    rawEvent({ ...corr, key: 'ce1', ts: D + 8 * H - 1000, received: D + 8 * H + 90_000 }),
    // Stored billable for a campaign nobody booked (as an older processor wrote it): never billed.
    rawEvent({ campaign: 'cmp_ghost', publisher: 'pub_ghost', imp: 'impg1', key: 'ge1', ts: D + 9 * H }),
    rawEvent({ campaign: 'cmp_ghost', publisher: 'pub_ghost', imp: 'impg2', key: 'ge2', ts: D + 9 * H, reason: 'unknown_campaign' }),
  ])
  // Stream rollups as the processor would have written them for the fixture day (stream verdicts).
  await insertRollup(env.ch.client, 'adc', [
    { minute: D + 60 * M, campaign: 'cmp_demo_cpm', geo: 'US', device: 'mobile', impressions: 1, users: ['u1'] },
    { minute: D + 120 * M, campaign: 'cmp_demo_cpm', geo: 'DE', device: 'desktop', impressions: 1, users: ['u2'] },
    { minute: D + 180 * M, campaign: 'cmp_demo_cpm', geo: 'DE', device: 'desktop', impressions: 1, users: ['u2'] },
    { minute: D + 240 * M, campaign: 'cmp_demo_cpm', geo: 'US', device: 'desktop', ivtImpressions: 1, lastReceived: D + 300 * M },
    { minute: D + 360 * M, campaign: 'cmp_demo_cpc', impressions: 1, clicks: 1, users: ['u9'] },
  ])
  await insertRows(env.ch.client, 'adc.rollup_ivt_minute', [
    { minute: `${FIXTURE_DAY} 04:00:00`, campaign_id: 'cmp_demo_cpm', publisher_id: 'pub_demo', event_type: 'impression', reason: 'givt_known_bot', events: 1 },
  ])
  await insertRows(env.ch.client, 'adc.edge_stats_minute', [
    { minute: `${FIXTURE_DAY} 01:00:00`, publisher_id: 'pub_demo', received: 11, accepted: 9, rejected: 1, duplicate: 1, rejected_by_reason: { invalid_event: 1 } },
    { minute: `${FIXTURE_DAY} 06:00:00`, publisher_id: 'pub_demo', received: 5, accepted: 4, rejected: 1, duplicate: 0, rejected_by_reason: { clock_skew: 1 } },
    { minute: `${FIXTURE_DAY} 08:00:00`, publisher_id: 'pub_corr', received: 2, accepted: 2, rejected: 0, duplicate: 0, rejected_by_reason: {} },
    { minute: `${FIXTURE_DAY} 07:00:00`, publisher_id: 'pub_lost', received: 5, accepted: 5, rejected: 0, duplicate: 0, rejected_by_reason: {} },
  ])
})

describe('openapi and auth', () => {
  it('documents every route from the schemas that validate it', async () => {
    const { status, body } = await call('/openapi.json')
    expect(status).toBe(200)
    const paths = Object.keys(body.paths).sort()
    expect(paths).toEqual(
      [
        '/v1/admin/advertisers', '/v1/admin/campaigns', '/v1/admin/changes', '/v1/admin/privacy/delete', '/v1/admin/privacy/requests/{requestId}', '/v1/admin/publishers', '/v1/admin/publishers/{id}',
        '/v1/admin/publishers/{id}/api-keys', '/v1/admin/publishers/{id}/api-keys/{keyHash}', '/v1/admin/publishers/{id}/signing-keys', '/v1/admin/publishers/{id}/signing-keys/{keyId}',
        '/v1/billing/daily', '/v1/billing/days',
        '/v1/billing/jobs', '/v1/billing/jobs/{id}', '/v1/campaigns', '/v1/internal/edge-config', '/v1/me',
        '/v1/metrics/campaigns/{id}/latency', '/v1/metrics/realtime', '/v1/reports/accounting', '/v1/reports/reconcile/{day}', '/v1/reports/reconcile/{day}/files', '/v1/reports/reconcile/{day}/files/{name}',
        '/v1/reprocess', '/v1/reprocess/{id}', '/v1/reprocess/{id}/promote', '/v1/settlement/daily',
      ].sort(),
    )
    const dims = body.paths['/v1/metrics/realtime'].get.parameters.find((p: any) => p.name === 'dimensions')
    expect(dims.schema.pattern).toContain('publisher')
    expect(body.components.securitySchemes.bearerAuth.scheme).toBe('bearer')
    // What any route answers before it runs: a body over the limit, a key over its budget.
    for (const [path, ops] of Object.entries(body.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>)) {
      for (const [method, op] of Object.entries(ops)) expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(['413', '429']))
    }
  })

  it('answers 401 with a reason code without a key or with an unknown one', async () => {
    expect(await call('/v1/campaigns')).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } })
    expect(await call('/v1/campaigns', 'ak_nope')).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } })
    expect(await call('/v1/nothing-here', ADV)).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
  })

  it('keeps its JSON errors, 404s and 405s when mounted under a parent app, as core main does', async () => {
    const parent = new Hono()
    parent.get('/healthz', (c) => c.json({ status: 'ok' }))
    parent.route('/', env.app)
    const req = (path: string, init: RequestInit = {}) => parent.request(path, { ...init, headers: { Authorization: `Bearer ${ADV}` } })
    expect(await (await req('/healthz')).json()).toEqual({ status: 'ok' })
    expect(await (await req('/v1/nothing')).json()).toMatchObject({ error: { code: 'not_found' } })
    const res = await req('/v1/campaigns', { method: 'DELETE' })
    expect(res.status).toBe(405)
    expect((await req('/v1/metrics/realtime?campaignId=bad id')).status).toBe(400)
    expect(await (await req('/v1/billing/daily?day=2026-11-20&advertiserId=adv_other')).json()).toMatchObject({ error: { code: 'forbidden' } })
    expect((await req('/dashboard')).headers.get('content-type')).toMatch(/^text\/html/)
  })

  it('turns a query past its time limit into 503 query_timeout with Retry-After (real engine error)', async () => {
    const probe = new Hono()
    probe.onError(createErrorHandler(pino({ level: 'silent' })))
    probe.get('/slow', async (c) => {
      await env.ch.client.query({ query: 'SELECT count() FROM numbers(100000000000) SETTINGS max_execution_time = 0.05', format: 'JSONEachRow' })
      return c.text('done')
    })
    const res = await probe.request('/slow')
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('5')
    expect(await res.json()).toMatchObject({ error: { code: 'query_timeout' } })
  })

  it('answers 405 with Allow for a known path and another method', async () => {
    const patch = await call('/v1/metrics/realtime?campaignId=cmp_demo_cpm', ADV, { method: 'PATCH' })
    expect(patch).toMatchObject({ status: 405, body: { error: { code: 'method_not_allowed' } } })
    expect(patch.headers.get('allow')).toBe('GET, HEAD')
    const del = await call('/v1/reprocess/01JD0000000000000000000000/promote', ADMIN, { method: 'DELETE' })
    expect(del.status).toBe(405)
    expect(del.headers.get('allow')).toBe('POST')
  })

  it('lists only the advertiser its own campaigns', async () => {
    const { body } = await call('/v1/campaigns', ADV)
    expect(body.campaigns.map((c: any) => c.id).sort()).toEqual(['cmp_demo_cpc', 'cmp_demo_cpm'])
    expect((await call('/v1/me', ADV)).body).toEqual({ kind: 'advertiser', id: 'adv_demo', name: 'Demo advertiser' })
    expect((await call('/v1/campaigns', PUB)).status).toBe(403)
  })
})

describe('GET /v1/metrics/realtime', () => {
  const q = (extra = '') => `/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=${FIXTURE_DAY}T00:00:00Z&to=${FIXTURE_DAY}T12:00:00Z${extra}`

  it('returns impressions, clicks, CTR, uniques, spend and IVT per minute, marked provisional with freshness', async () => {
    const { status, body } = await call(q(), ADV)
    expect(status).toBe(200)
    expect(body.provisional).toBe(true)
    expect(body.series.map((p: any) => [p.t, p.impressions, p.ivtImpressions])).toEqual([
      [D + 60 * M, 1, 0], [D + 120 * M, 1, 0], [D + 180 * M, 1, 0], [D + 240 * M, 0, 1],
    ])
    expect(body.totals).toEqual({ impressions: 3, clicks: 0, ctr: 0, uniques: 2, spendMicros: 6000, ivtImpressions: 1, ivtClicks: 0, measuredImpressions: 0, viewableImpressions: 0, viewabilityRate: null })
    expect(body.ivtByReason).toEqual([{ reason: 'givt_known_bot', eventType: 'impression', events: 1 }])
    expect(body.freshness).toEqual({ lastReceivedAt: D + 300 * M, lagMs: NOW - (D + 300 * M), asOf: NOW })
  })

  it('breaks down by geo and device and rolls minutes into hours', async () => {
    const { body } = await call(q('&dimensions=geo,device&granularity=hour'), ADV)
    expect(body.dimensions).toEqual(['geo', 'device'])
    expect(body.series.map((p: any) => [p.t, p.geo, p.device, p.impressions])).toEqual([
      [D + 60 * M, 'US', 'mobile', 1], [D + 120 * M, 'DE', 'desktop', 1], [D + 180 * M, 'DE', 'desktop', 1], [D + 240 * M, 'US', 'desktop', 0],
    ])
    const cpc = await call(`/v1/metrics/realtime?campaignId=cmp_demo_cpc&from=${D}&to=${D + 86_400_000}&granularity=hour`, ADV)
    expect(cpc.body.totals).toMatchObject({ impressions: 1, clicks: 1, ctr: 1, spendMicros: 500_000 })
  })

  it('refuses bad input with a 4xx and a reason code, never a 500', async () => {
    const cases: Array<[string, number, string]> = [
      [`/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=${FIXTURE_DAY}T12:00:00Z&to=${FIXTURE_DAY}T00:00:00Z`, 400, 'invalid_range'],
      [`/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=2026-01-01&to=2026-11-01`, 400, 'invalid_range'],
      [`/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=2027-01-01&to=2027-01-02`, 400, 'invalid_range'],
      [q('&dimensions=geo,country'), 400, 'invalid_query'],
      [q('&granularity=second'), 400, 'invalid_query'],
      [q('&limit=0'), 400, 'invalid_query'],
      [q('&limit=9999999'), 400, 'invalid_query'],
      [`/v1/metrics/realtime?campaignId=cmp%20drop%3B&from=${D}`, 400, 'invalid_query'],
      [`/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=yesterday`, 400, 'invalid_query'],
      [`/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=2026-11-20T10:00:00`, 400, 'invalid_query'],
      ['/v1/metrics/realtime', 400, 'invalid_query'],
    ]
    for (const [path, status, code] of cases) {
      const res = await call(path, ADV)
      expect({ path, status: res.status, code: res.body?.error?.code }).toEqual({ path, status, code })
      expect(JSON.stringify(res.body)).not.toContain('"issues"')
    }
  })

  it("never shows another tenant's campaign: 403 for the advertiser, the publisher and an unknown id", async () => {
    const other = await post('/v1/admin/advertisers', ADMIN, { id: 'adv_other', name: 'Other' })
    expect(other.status).toBe(201)
    expect((await post('/v1/admin/campaigns', ADMIN, { id: 'cmp_other', advertiserId: 'adv_other', pricing: { model: 'cpc', priceMicros: 1 } })).status).toBe(201)
    const theirs = await call(`/v1/metrics/realtime?campaignId=cmp_other`, ADV)
    expect(theirs).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } })
    expect((await call(q(), other.body.apiKey)).status).toBe(403)
    expect((await call(q(), PUB)).status).toBe(403)
    expect((await call('/v1/metrics/realtime?campaignId=cmp_unknown', ADV)).status).toBe(403)
    expect((await call('/v1/metrics/realtime?campaignId=cmp_unknown', ADMIN)).status).toBe(404)
    expect((await call('/v1/metrics/campaigns/cmp_other/latency', ADV)).status).toBe(403)
  })
})

describe('GET /v1/metrics/campaigns/{id}/latency', () => {
  it('reports ingest lag and event delay quantiles over the window, with freshness', async () => {
    await insertRows(env.ch.client, 'adc.events_raw', [
      rawEvent({ key: 'lat1', imp: 'impl1', campaign: 'cmp_demo_cpc', ts: NOW - 5 * M, received: NOW - 4 * M }),
      rawEvent({ key: 'lat2', imp: 'impl2', campaign: 'cmp_demo_cpc', ts: NOW - 3 * M, received: NOW - 2 * M }),
    ])
    const { status, body } = await call('/v1/metrics/campaigns/cmp_demo_cpc/latency?windowMinutes=30', ADV)
    expect(status).toBe(200)
    expect(body.events).toBe(2)
    expect(body.ingestLagMs.p50).toBe(500)
    expect(body.eventDelayMs.p50).toBe(60_000)
    expect(body.freshness.lastReceivedAt).toBe(D + 360 * M + 30_000)
    expect((await call('/v1/metrics/campaigns/cmp_demo_cpc/latency?windowMinutes=99999', ADV)).body.error.code).toBe('invalid_query')
  })
})

describe('admin and edge config', () => {
  it('creates tenants with the admin key only, and refuses conflicts and dangling references', async () => {
    expect((await post('/v1/admin/advertisers', ADV, { id: 'adv_x', name: 'X' })).status).toBe(403)
    const created = await post('/v1/admin/advertisers', ADMIN, { id: 'adv_x', name: 'X' })
    expect(created).toMatchObject({ status: 201, body: { id: 'adv_x', apiKey: expect.stringMatching(/^ak_/) } })
    expect((await post('/v1/admin/advertisers', ADMIN, { id: 'adv_x', name: 'again' })).body.error.code).toBe('conflict')
    const dangling = await post('/v1/admin/campaigns', ADMIN, { id: 'cmp_x', advertiserId: 'adv_nobody', pricing: { model: 'cpm', priceMicros: 1 } })
    expect(dangling).toMatchObject({ status: 422, body: { error: { code: 'unknown_reference' } } })
    const badBody = await post('/v1/admin/campaigns', ADMIN, { id: 'cmp_x', advertiserId: 'adv_x', pricing: { model: 'cpa', priceMicros: -1 } })
    expect(badBody).toMatchObject({ status: 400, body: { error: { code: 'invalid_body' } } })
    const malformed = await call('/v1/admin/advertisers', ADMIN, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"id":' })
    expect(malformed.status).toBe(400)
    expect(malformed.body.error.code).toBe('invalid_body')
  })

  it('reads no body over 1 MiB from any key holder: 413 payload_too_large, declared or streamed', async () => {
    const over = JSON.stringify({ id: 'adv_big', name: 'x'.repeat(API_MAX_BODY_BYTES) })
    // An advertiser's key on an admin route: refused for its size before anything parses it.
    const declared = await call('/v1/admin/advertisers', ADV, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': String(over.length) }, body: over })
    expect(declared).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } })
    // No Content-Length (chunked): counted as it streams in.
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024))
    let sent = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 4 * API_MAX_BODY_BYTES) return controller.close()
        sent += chunk.length
        controller.enqueue(chunk)
      },
    })
    const streamed = await call('/v1/admin/advertisers', ADMIN, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit)
    expect(streamed).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } })
    expect(sent).toBeLessThan(4 * API_MAX_BODY_BYTES)
    // Nothing was created (the id is still free), and a body under the limit is read as before.
    expect((await post('/v1/admin/advertisers', ADMIN, { id: 'adv_big', name: 'Big' })).status).toBe(201)
  })

  it("limits each advertiser's and publisher's key to its request budget (429 api_rate_limited), apart from each other; admin keys are not limited", async () => {
    const limited = createApiApp({
      clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: pino({ level: 'silent' }), clock: () => NOW,
      keyLimit: { perSecond: 0.01, burst: 3 },
    })
    const get = (key: string, path = '/v1/metrics/campaigns/cmp_demo_cpm/latency') => limited.request(path, { headers: { authorization: `Bearer ${key}` } })
    for (let i = 0; i < 3; i++) expect((await get(ADV)).status).toBe(200)
    const over = await get(ADV)
    expect(over.status).toBe(429)
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await over.json()).toMatchObject({ error: { code: 'api_rate_limited' } })
    // Another key holder has a budget of its own; a refused request spent none of it.
    const settlement = `/v1/settlement/daily?publisherId=pub_demo&day=${FIXTURE_DAY}`
    for (let i = 0; i < 3; i++) expect((await get(PUB, settlement)).status).not.toBe(429)
    expect((await get(PUB, settlement)).status).toBe(429)
    for (let i = 0; i < 10; i++) expect((await get(ADMIN, `/v1/reports/accounting?day=${FIXTURE_DAY}`)).status).not.toBe(429)
  })

  it('gives a new publisher a key and signing secret that reach the edge config without a redeploy', async () => {
    expect((await call('/v1/internal/edge-config', ADV)).status).toBe(401)
    const before = (await call('/v1/internal/edge-config', 'edge_sync_test')).body
    const pub = await post('/v1/admin/publishers', ADMIN, { id: 'pub_new', name: 'New', rateLimit: { perSecond: 10, burst: 20 } })
    expect(pub.status).toBe(201)
    expect(pub.body.requestSigningScope).toBe('app')
    const after = await call('/v1/internal/edge-config', 'edge_sync_test')
    expect(after.status).toBe(200)
    expect(after.body.version).toBeGreaterThan(before.version)
    expect(after.body.publishers.find((p: any) => p.id === 'pub_new')).toEqual({
      id: 'pub_new', apiKeyHashes: [hashApiKey(pub.body.apiKey)], publicKeyHashes: [hashApiKey(pub.body.publicKey)],
      signingKeys: { [pub.body.signingKeyId]: pub.body.signingSecret },
      // A request key is an app's unless created with scope server.
      requestSigningKeys: {}, appRequestSigningKeys: { [pub.body.requestSigningKeyId]: pub.body.requestSigningSecret },
      rateLimit: { perSecond: 10, burst: 20 }, active: true,
    })
    expect(after.body.campaignIds).toEqual(expect.arrayContaining(['cmp_demo_cpm', 'cmp_demo_cpc']))
    // A second publisher gets key ids of its own (they were all `k1`, so only one publisher's worked).
    const other = await post('/v1/admin/publishers', ADMIN, { id: 'pub_new2', name: 'New 2' })
    expect(other.body.signingKeyId).not.toBe(pub.body.signingKeyId)
    expect(other.body.requestSigningKeyId).not.toBe(pub.body.requestSigningKeyId)
    const clash = await post('/v1/admin/publishers', ADMIN, { id: 'pub_new3', name: 'New 3', signingKeyId: pub.body.signingKeyId })
    expect(clash).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } })
    expect((await post('/v1/admin/publishers/pub_new2/signing-keys', ADMIN, { keyId: pub.body.requestSigningKeyId })).status).toBe(409)
    expect((await call('/v1/settlement/daily?day=2026-11-20', pub.body.apiKey)).body.publisherId).toBe('pub_new')
  })

  it('rotates a publisher key and signing secret and changes its limits, all reaching the edge config', async () => {
    const added = await post('/v1/admin/publishers/pub_new/api-keys', ADMIN, {})
    expect(added).toMatchObject({ status: 201, body: { keyHash: hashApiKey(added.body.apiKey), scope: 'server' } })
    const publicAdded = await post('/v1/admin/publishers/pub_new/api-keys', ADMIN, { scope: 'public' })
    expect(publicAdded).toMatchObject({ status: 201, body: { scope: 'public', apiKey: expect.stringMatching(/^pkpub_/) } })
    for (const { keyHash } of (added.body.publisher.apiKeys as { keyHash: string }[]).filter((k) => k.keyHash !== added.body.keyHash)) {
      expect((await call(`/v1/admin/publishers/pub_new/api-keys/${keyHash}`, ADMIN, { method: 'DELETE' })).status).toBe(200)
    }
    const revoked = await call(`/v1/admin/publishers/pub_new/api-keys/${publicAdded.body.keyHash}`, ADMIN, { method: 'DELETE' })
    expect(revoked.body.apiKeyHashes).toEqual([added.body.keyHash])
    const last = await call(`/v1/admin/publishers/pub_new/api-keys/${added.body.keyHash}`, ADMIN, { method: 'DELETE' })
    expect(last).toMatchObject({ status: 409, body: { error: { code: 'conflict' } } })
    const signing = await post('/v1/admin/publishers/pub_new/signing-keys', ADMIN, { keyId: 'k2' })
    expect(signing).toMatchObject({ status: 201, body: { purpose: 'token' } })
    const requestKey = await post('/v1/admin/publishers/pub_new/signing-keys', ADMIN, { purpose: 'request' })
    expect(requestKey).toMatchObject({ status: 201, body: { purpose: 'request', scope: 'app', keyId: expect.stringMatching(/^k_/) } })
    expect(signing.body).not.toHaveProperty('scope')
    const firstIds = (signing.body.publisher.signingKeyIds as string[]).filter((k) => k !== 'k2')
    for (const keyId of firstIds) {
      expect((await call(`/v1/admin/publishers/pub_new/signing-keys/${keyId}`, ADMIN, { method: 'DELETE' })).status).toBe(200)
    }
    expect((await call('/v1/admin/publishers/pub_new/signing-keys/nope', ADMIN, { method: 'DELETE' })).status).toBe(404)
    const patched = await call('/v1/admin/publishers/pub_new', ADMIN, {
      method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ rateLimit: { perSecond: 1, burst: 2 }, active: false }),
    })
    expect(patched.body).toMatchObject({
      signingKeys: [{ keyId: 'k2', purpose: 'token' }, { keyId: requestKey.body.keyId, purpose: 'request', scope: 'app' }], rateLimit: { perSecond: 1, burst: 2 }, active: false,
    })
    expect(JSON.stringify(patched.body)).not.toContain(signing.body.signingSecret)
    const edge = (await call('/v1/internal/edge-config', 'edge_sync_test')).body.publishers.find((p: any) => p.id === 'pub_new')
    expect(edge).toMatchObject({
      apiKeyHashes: [added.body.keyHash], publicKeyHashes: [], signingKeys: { k2: signing.body.signingSecret },
      requestSigningKeys: {}, appRequestSigningKeys: { [requestKey.body.keyId]: requestKey.body.signingSecret }, rateLimit: { perSecond: 1, burst: 2 }, active: false,
    })
    expect((await call('/v1/admin/publishers/pub_new', ADMIN, { method: 'PATCH' })).body.error.code).toBe('invalid_body')
    expect((await call('/v1/admin/publishers/pub_new/signing-keys', ADMIN, { method: 'POST' })).body.error.code).toBe('invalid_body')
    expect((await post('/v1/admin/publishers/pub_missing/api-keys', ADMIN, {})).status).toBe(404)
    expect((await post('/v1/admin/publishers/pub_new/api-keys', ADV, {})).status).toBe(403)
    expect((await call('/v1/admin/publishers/pub_new/api-keys/xyz', ADMIN, { method: 'DELETE' })).body.error.code).toBe('invalid_query')
  })

  it('creates request signing keys with a scope (app unless server is asked), serves each under its scope to the edge, and refuses a scope on a token key', async () => {
    const server = await post('/v1/admin/publishers/pub_new2/signing-keys', ADMIN, { purpose: 'request', scope: 'server' })
    expect(server).toMatchObject({ status: 201, body: { purpose: 'request', scope: 'server' } })
    const app = await post('/v1/admin/publishers/pub_new2/signing-keys', ADMIN, { purpose: 'request', scope: 'app' })
    expect(app).toMatchObject({ status: 201, body: { purpose: 'request', scope: 'app' } })
    expect(server.body.publisher.signingKeys).toContainEqual({ keyId: server.body.keyId, purpose: 'request', scope: 'server' })
    for (const body of [{ scope: 'server' }, { purpose: 'token', scope: 'app' }]) {
      const refused = await post('/v1/admin/publishers/pub_new2/signing-keys', ADMIN, body)
      expect(refused).toMatchObject({ status: 400, body: { error: { code: 'scope_not_applicable', message: expect.stringContaining('request signing keys only') } } })
    }
    expect((await post('/v1/admin/publishers/pub_new2/signing-keys', ADMIN, { purpose: 'request', scope: 'device' })).body.error.code).toBe('invalid_body')
    const created = await post('/v1/admin/publishers', ADMIN, { id: 'pub_new_s2s', name: 'S2S', requestSigningScope: 'server' })
    expect(created).toMatchObject({ status: 201, body: { requestSigningScope: 'server' } })
    const edge = (await call('/v1/internal/edge-config', 'edge_sync_test')).body.publishers
    const p2 = edge.find((p: any) => p.id === 'pub_new2')
    expect(p2.requestSigningKeys).toEqual({ [server.body.keyId]: server.body.signingSecret })
    expect(p2.appRequestSigningKeys).toMatchObject({ [app.body.keyId]: app.body.signingSecret })
    expect(p2.appRequestSigningKeys).not.toHaveProperty(server.body.keyId)
    expect(edge.find((p: any) => p.id === 'pub_new_s2s').requestSigningKeys).toEqual({ [created.body.requestSigningKeyId]: created.body.requestSigningSecret })
    // The document shows the scope.
    const doc = JSON.stringify((await call('/openapi.json', ADMIN)).body)
    expect(doc).toContain('requestSigningScope')
    expect(doc).toContain('appRequestSigningKeys')
  })
})

describe('billing, settlement, reconcile, accounting, reprocess', () => {
  let jobId = ''

  it('says a day without a snapshot is not final', async () => {
    const { status, body } = await call(`/v1/billing/daily?day=${FIXTURE_DAY}`, ADV)
    expect(status).toBe(200)
    expect(body).toMatchObject({ final: false, version: null, campaigns: [] })
  })

  it('runs a billing job on demand and serves the final snapshot to the advertiser', async () => {
    const submitted = await post('/v1/billing/jobs', ADMIN, { day: FIXTURE_DAY })
    expect(submitted.status).toBe(202)
    jobId = submitted.body.id
    expect(['queued', 'running', 'done']).toContain(submitted.body.status)
    await env.billing.idle()
    const listed = await call('/v1/billing/jobs?limit=5', ADMIN)
    expect(listed.body.jobs[0]).toMatchObject({ id: jobId, kind: 'billing' })
    const job = await call(`/v1/billing/jobs/${jobId}`, ADMIN)
    expect(job.body).toMatchObject({ status: 'done', progress: 1, versions: { [FIXTURE_DAY]: 1 } })
    const daily = await call(`/v1/billing/daily?day=${FIXTURE_DAY}`, ADV)
    expect(daily.body).toMatchObject({ advertiserId: 'adv_demo', final: true, version: 1, totals: { impressions: 4, clicks: 2, spendMicros: 1_006_000 } })
    const cpm = daily.body.campaigns.find((c: any) => c.campaignId === 'cmp_demo_cpm')
    expect(cpm).toMatchObject({ impressions: 3, ivtImpressions: 1, ivtByReason: { givt_known_bot: 1 }, duplicates: 3, spendMicros: 6000 })
    const days = await call(`/v1/billing/days?from=2026-11-01&to=2026-11-22`, ADV)
    expect(days.body.days).toEqual([{ day: FIXTURE_DAY, final: true, versions: [expect.objectContaining({ version: 1, status: 'final' })] }])
  })

  it('refuses bad billing requests with reason codes', async () => {
    expect((await post('/v1/billing/jobs', ADMIN, { day: '2026-11-23' })).body.error.code).toBe('invalid_range')
    expect((await post('/v1/billing/jobs', ADMIN, { day: '2026-02-30' })).body.error.code).toBe('invalid_body')
    expect((await post('/v1/billing/jobs', ADV, { day: FIXTURE_DAY })).status).toBe(403)
    expect((await call(`/v1/billing/jobs/01JD0000000000000000000000`, ADMIN)).status).toBe(404)
    expect((await call(`/v1/billing/jobs/not-a-ulid`, ADMIN)).body.error.code).toBe('invalid_query')
    expect((await call(`/v1/billing/daily?day=2030-01-01`, ADV)).body.error.code).toBe('invalid_range')
    expect((await call(`/v1/billing/daily?day=${FIXTURE_DAY}&advertiserId=adv_other`, ADV)).status).toBe(403)
    expect((await call(`/v1/billing/daily?day=${FIXTURE_DAY}`, PUB)).status).toBe(403)
    expect((await call(`/v1/billing/daily?day=${FIXTURE_DAY}`, ADMIN)).body.error.code).toBe('invalid_query')
    expect((await call(`/v1/billing/days?from=2026-11-22&to=2026-11-01`, ADV)).body.error.code).toBe('invalid_range')
  })

  it('serves a publisher its settlement as JSON and CSV, and nobody else', async () => {
    const json = await call(`/v1/settlement/daily?day=${FIXTURE_DAY}`, PUB)
    expect(json.body).toMatchObject({ publisherId: 'pub_demo', final: true, version: 1, totalMicros: 1_006_000 })
    expect(json.body.lines.map((l: any) => [l.campaignId, l.amountMicros])).toEqual([['cmp_demo_cpc', 1_000_000], ['cmp_demo_cpm', 6000]])
    const csv = await call(`/v1/settlement/daily?day=${FIXTURE_DAY}`, PUB, { headers: { Accept: 'text/csv' } })
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/)
    const lines = String(csv.body).trim().split('\r\n')
    expect(lines[0]).toBe('day,version,publisher_id,campaign_id,advertiser_id,pricing_model,price_micros,impressions,clicks,ivt_impressions,ivt_clicks,amount_micros')
    expect(lines[2]).toBe(`${FIXTURE_DAY},1,pub_demo,cmp_demo_cpm,adv_demo,cpm,2000000,3,0,1,0,6000`)
    expect((await call(`/v1/settlement/daily?day=${FIXTURE_DAY}&format=csv`, PUB)).body).toBe(csv.body)
    expect((await call(`/v1/settlement/daily?day=${FIXTURE_DAY}&publisherId=pub_new`, PUB)).status).toBe(403)
    expect((await call(`/v1/settlement/daily?day=${FIXTURE_DAY}`, ADV)).status).toBe(403)
  })

  it('reconciles stream rollups with the snapshot and explains each difference by reason', async () => {
    const { status, body } = await call(`/v1/reports/reconcile/${FIXTURE_DAY}`, ADMIN)
    expect(status).toBe(200)
    expect(body.snapshotVersion).toBe(1)
    const cpc = body.campaigns.find((c: any) => c.campaignId === 'cmp_demo_cpc')
    // The stream billed c4 only; the final join also found c1's impression from the previous day.
    expect(cpc.stream).toMatchObject({ impressions: 1, clicks: 1 })
    expect(cpc.snapshot).toMatchObject({ impressions: 1, clicks: 2 })
    expect(cpc.difference).toEqual({ impressions: 0, clicks: -1 })
    expect(cpc.explained.clicks.orphan_resolved).toBe(-1)
    expect(cpc.unexplained).toEqual({ impressions: 0, clicks: 0 })
    const cpm = body.campaigns.find((c: any) => c.campaignId === 'cmp_demo_cpm')
    expect(cpm.difference).toEqual({ impressions: 0, clicks: 0 })
    expect((await call(`/v1/reports/reconcile/${FIXTURE_DAY}`, ADV)).status).toBe(403)
    expect((await call(`/v1/reports/reconcile/2026-13-01`, ADMIN)).body.error.code).toBe('invalid_query')
  })

  it('shows the accounting invariant per publisher and never hides a difference', async () => {
    const { body } = await call(`/v1/reports/accounting?day=${FIXTURE_DAY}`, ADMIN)
    const demo = body.publishers.find((p: any) => p.publisherId === 'pub_demo')
    expect(demo.edge).toEqual({ received: 16, accepted: 13, rejected: 2, duplicate: 1, rejectedByReason: { invalid_event: 1, clock_skew: 1 } })
    expect(demo.core).toEqual({
      accepted: 13, billed: 6,
      keptByReason: { duplicate_impression: 1, givt_known_bot: 1, duplicate_delivery: 2, orphan_click: 2, repeat_click: 1 },
      logCopies: 0,
    })
    expect(demo.balanced).toBe(true)
    // A stream orphan later joined: +1 orphan, then -1 orphan and +1 billed; it nets to one billed click.
    const corr = body.publishers.find((p: any) => p.publisherId === 'pub_corr')
    expect(corr).toMatchObject({ core: { accepted: 2, billed: 2, keptByReason: {} }, balanced: true })
    const lost = body.publishers.find((p: any) => p.publisherId === 'pub_lost')
    expect(lost).toMatchObject({ balanced: false, differences: { edgeUnbalanced: 0, inFlightOrMissing: 5 } })
    const ghost = body.publishers.find((p: any) => p.publisherId === 'pub_ghost')
    expect(ghost.core).toEqual({ accepted: 2, billed: 0, keptByReason: { unknown_campaign: 2 }, logCopies: 0 })
    expect(body.balanced).toBe(false)
  })

  it('reprocesses with another IVT model into a candidate, compares it, and promotes it explicitly', async () => {
    expect((await post('/v1/reprocess', ADMIN, { from: FIXTURE_DAY, to: FIXTURE_DAY, reason: 'x', modelVersion: 'ivt-0' })).body.error.code).toBe('unknown_reference')
    expect((await post('/v1/reprocess', ADMIN, { from: FIXTURE_DAY, to: FIXTURE_DAY, reason: 'x', modelVersion: 'ivt-2026.12.1', attributionVersion: 'attr-0' })).body.error.code).toBe('unknown_reference')
    expect((await post('/v1/reprocess', ADMIN, { from: '2026-11-20', to: '2026-11-10', reason: 'x', modelVersion: 'ivt-2026.12.1' })).body.error.code).toBe('invalid_range')
    expect((await post('/v1/reprocess', ADMIN, { from: '2026-01-01', to: '2026-11-20', reason: 'x', modelVersion: 'ivt-2026.12.1' })).body.error.code).toBe('invalid_range')
    expect((await post('/v1/reprocess', ADMIN, { from: '2026-11-20', to: '2026-11-30', reason: 'x', modelVersion: 'ivt-2026.12.1' })).body.error.code).toBe('invalid_range')
    expect((await post('/v1/reprocess', ADMIN, { from: FIXTURE_DAY, to: FIXTURE_DAY, reason: '', modelVersion: 'ivt-2026.12.1' })).status).toBe(400)
    const submitted = await post('/v1/reprocess', ADMIN, { from: FIXTURE_DAY, to: FIXTURE_DAY, reason: 'stricter thresholds', modelVersion: 'ivt-2026.12.1' })
    expect(submitted.status).toBe(202)
    await env.billing.idle()
    const got = await call(`/v1/reprocess/${submitted.body.id}`, ADMIN)
    expect(got.body.job).toMatchObject({ status: 'done', kind: 'reprocess', versions: { [FIXTURE_DAY]: 2 } })
    // Scored from the stored raw rows: c4 came 2 s after its impression, a fast click for this model.
    const cpc = got.body.comparison.find((c: any) => c.campaignId === 'cmp_demo_cpc')
    expect(cpc).toMatchObject({ current: { version: 1, clicks: 2 }, candidate: { version: 2, clicks: 1 }, delta: { clicks: -1, ivtClicks: 1, spendMicros: -500_000 } })
    expect(got.body.comparison.find((c: any) => c.campaignId === 'cmp_demo_cpm').delta).toEqual({ impressions: 0, clicks: 0, ivtImpressions: 0, ivtClicks: 0, spendMicros: 0 })
    expect(got.body.job.events).toEqual({ scored: expect.any(Number), total: expect.any(Number) })
    // Not final until promoted.
    expect((await call(`/v1/billing/daily?day=${FIXTURE_DAY}`, ADV)).body.version).toBe(1)
    const promoted = await post(`/v1/reprocess/${submitted.body.id}/promote`, ADMIN, {})
    expect(promoted).toMatchObject({ status: 200, body: { promotedVersions: { [FIXTURE_DAY]: 3 } } })
    expect((await post(`/v1/reprocess/${submitted.body.id}/promote`, ADMIN, {})).body.error.code).toBe('conflict')
    const daily = await call(`/v1/billing/daily?day=${FIXTURE_DAY}`, ADV)
    expect(daily.body).toMatchObject({ version: 3, modelVersion: 'ivt-2026.12.1' })
    expect(daily.body.versions.map((v: any) => v.version)).toEqual([1, 3])
    // The advertiser reads what kind of version it is, not the operator's words.
    expect(daily.body.reason).toBe(`promoted reprocess ${submitted.body.id} (ivt-2026.12.1)`)
    expect((await call(`/v1/billing/daily?day=${FIXTURE_DAY}&advertiserId=${daily.body.advertiserId}`, ADMIN)).body.reason).toContain('stricter thresholds')
    expect((await call(`/v1/reprocess/${jobId}`, ADMIN)).status).toBe(404)
    expect((await post(`/v1/reprocess/${jobId}/promote`, ADMIN, {})).status).toBe(404)
  })
})
