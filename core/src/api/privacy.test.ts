import { chTime } from '@adc/schemas'
import { createHash } from 'node:crypto'
import pino from 'pino'
import { Registry } from 'prom-client'
import { ulid } from 'ulid'
import { beforeAll, describe, expect, it } from 'vitest'
import { DEMO_DEFAULTS } from '../tenants/tenant-store.js'
import { createApiApp } from './app.js'
import { createPrivacyRetry, readPrivacyRequest } from '../privacy/retry.js'
import { insertPrivacyRow, type RawEraser } from '../privacy/erase.js'
import { insertRollup, insertRows, rawEvent } from '../testing/api.js'
import { useApiEnv } from '../testing/api-env.js'

const DAY = '2026-10-10'
const D = Date.parse(`${DAY}T00:00:00Z`)
const NOW = D + 2 * 86_400_000
const IP = 'ab'.repeat(32)
const env = useApiEnv({ tempPrefix: 'adc-privacy-', clock: () => NOW, app: () => ({ registry: new Registry() }) })
const q = async <T>(query: string): Promise<T[]> => (await env.ch.client.query({ query, format: 'JSONEachRow' })).json<T>()
const del = (body: unknown, key = DEMO_DEFAULTS.adminKey) =>
  env.app.request('/v1/admin/privacy/delete', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
const raw = (e: Parameters<typeof rawEvent>[0], user: string, ip = '') => ({ ...rawEvent(e), user_key: user, ip_hash: ip })

beforeAll(async () => {
  await insertRows(env.ch.client, 'adc.events_raw', [
    raw({ key: 'u1a', imp: 'imp_u1a', campaign: 'cmp_demo_cpm', ts: D + 3_600_000 }, 'user-1'),
    raw({ key: 'u1b', imp: 'imp_u1b', campaign: 'cmp_demo_cpm', ts: D + 7_200_000, reason: 'givt_known_bot' }, 'user-1'),
    raw({ key: 'u2a', imp: 'imp_u2a', campaign: 'cmp_demo_cpm', ts: D + 3_600_000 }, 'user-2'),
    raw({ key: 'o1a', imp: 'imp_o1a', campaign: 'cmp_demo_cpm', ts: D + 3_600_000, publisher: 'pub_other' }, 'user-1'),
    raw({ key: 'ip1', imp: 'imp_ip1', campaign: 'cmp_demo_cpm', ts: D + 3_600_000 }, '', IP),
  ])
  await insertRows(env.ch.client, 'adc.ivt_decisions', [
    { event_key: 'u1b', event_type: 'impression', campaign_id: 'cmp_demo_cpm', publisher_id: 'pub_demo', ts: '2026-10-10 02:00:00.000', score: 1, reasons: ['givt_known_bot'] },
    { event_key: 'u2a', event_type: 'impression', campaign_id: 'cmp_demo_cpm', publisher_id: 'pub_demo', ts: '2026-10-10 01:00:00.000', score: 0, reasons: [] },
  ])
  await insertRows(env.ch.client, 'adc.bad_rows', [
    { received_at: '2026-10-10 01:00:00.000', log_topic: 'ad-events', reason: 'sink_rejected', payload: JSON.stringify({ event: { publisherId: 'pub_demo', userKey: 'user-1' }, client: {} }) },
    { received_at: '2026-10-10 01:00:00.000', log_topic: 'ad-events', reason: 'sink_rejected', payload: JSON.stringify({ event: { publisherId: 'pub_demo', userKey: 'user-2' }, client: {} }) },
  ])
  await insertRollup(env.ch.client, 'adc', [{ minute: D + 3_600_000, campaign: 'cmp_demo_cpm', geo: 'US', device: 'desktop', impressions: 3, users: ['user-1', 'user-2'] }])
  await env.billing.submitBilling(DAY, 'test')
  await env.billing.idle()
})

describe('POST /v1/admin/privacy/delete', () => {
  it("erases a user's raw rows of that publisher, keeps billed aggregates and snapshots, and leaves an audit record", async () => {
    const snapshotBefore = await env.billing.snapshots.lines(DAY, 1)
    const rollupBefore = await q(`SELECT sum(impressions) AS i, uniqMerge(uniques) AS u FROM adc.rollup_minute`)
    const res = await del({ publisherId: 'pub_demo', userKey: 'user-1' })
    expect(res.status).toBe(200)
    const audit = (await res.json()) as { requestId: string; deleted: Record<string, number>; external: Record<string, string>; subjectSha256: string }
    expect(audit.deleted).toEqual({ events_raw: 2, ivt_decisions: 1, bad_rows: 1 })
    expect(audit.external).toEqual({ clickhouse: 'done', iceberg: 'pending' })
    expect(audit.subjectSha256).toBe(createHash('sha256').update('user-1').digest('hex'))

    const left = await q<{ event_key: string }>(`SELECT event_key FROM adc.events_raw ORDER BY event_key`)
    expect(left.map((r) => r.event_key)).toEqual(['ip1', 'o1a', 'u2a'])
    expect((await q<{ event_key: string }>(`SELECT event_key FROM adc.ivt_decisions`)).map((r) => r.event_key)).toEqual(['u2a'])
    expect(JSON.stringify(await q(`SELECT payload FROM adc.bad_rows`))).not.toContain('user-1')
    expect(await env.billing.snapshots.lines(DAY, 1)).toEqual(snapshotBefore)
    expect(await q(`SELECT sum(impressions) AS i, uniqMerge(uniques) AS u FROM adc.rollup_minute`)).toEqual(rollupBefore)

    // Written ahead with every store pending, then a follow-up with what each store answered.
    const rows = await q<{ request_id: string; subject: string; subject_sha256: string; requested_by: string; external: Record<string, string>; follow_up_of: string }>(
      `SELECT request_id, subject, subject_sha256, requested_by, external, follow_up_of FROM adc.privacy_requests ORDER BY requested_at`,
    )
    expect(rows).toEqual([
      { request_id: audit.requestId, subject: 'userKey', subject_sha256: audit.subjectSha256, requested_by: 'admin_demo', external: { clickhouse: 'pending', iceberg: 'pending' }, follow_up_of: '' },
      { request_id: expect.any(String), subject: 'userKey', subject_sha256: audit.subjectSha256, requested_by: 'admin_demo', external: { clickhouse: 'done', iceberg: 'pending' }, follow_up_of: audit.requestId },
    ])
    expect(JSON.stringify(await q(`SELECT * FROM adc.privacy_requests`))).not.toContain('user-1')
  })

  it('erases by IP hash', async () => {
    const res = await del({ publisherId: 'pub_demo', ipHash: IP.toUpperCase() })
    expect(res.status).toBe(200)
    expect(((await res.json()) as { deleted: Record<string, number> }).deleted.events_raw).toBe(1)
    expect((await q(`SELECT event_key FROM adc.events_raw WHERE ip_hash = '${IP}'`))).toEqual([])
  })

  it('needs exactly one identifier and an admin key', async () => {
    expect((await del({ publisherId: 'pub_demo' })).status).toBe(400)
    expect((await del({ publisherId: 'pub_demo', userKey: 'x', ipHash: IP })).status).toBe(400)
    expect((await del({ publisherId: 'pub_demo', userKey: 'user-2' }, DEMO_DEFAULTS.publisherKey)).status).toBe(403)
    expect((await q(`SELECT count() AS n FROM adc.events_raw WHERE user_key = 'user-2'`))).toEqual([{ n: 1 }])
  })
})

describe('raw stores erased elsewhere', () => {
  it('asks each configured eraser (the hook the Iceberg writer plugs into) and records its answer', async () => {
    const asked: unknown[] = []
    const hooked = createApiApp({
      clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: pino({ level: 'silent' }), registry: new Registry(), clock: () => NOW,
      rawErasers: [{ name: 'iceberg', erase: async (s) => (asked.push(s), 'done') }],
    })
    const res = await hooked.request('/v1/admin/privacy/delete', {
      method: 'POST', headers: { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ publisherId: 'pub_demo', userKey: 'user-9' }),
    })
    expect(res.status).toBe(200)
    expect(((await res.json()) as { external: Record<string, string> }).external).toEqual({ clickhouse: 'done', iceberg: 'done' })
    expect(asked).toEqual([{ publisherId: 'pub_demo', userKey: 'user-9' }])
  })
})

describe('GET /v1/admin/privacy/requests/{id}', () => {
  it('shows a request pending in the lake, then done once a retry finished it, from a follow-up row', async () => {
    const res = await del({ publisherId: 'pub_demo', userKey: 'user-7' })
    const { requestId, subjectSha256 } = (await res.json()) as { requestId: string; subjectSha256: string }
    const get = (id: string, key = DEMO_DEFAULTS.adminKey) => env.app.request(`/v1/admin/privacy/requests/${id}`, { headers: { authorization: `Bearer ${key}` } })
    const before = await get(requestId)
    expect(before.status).toBe(200)
    expect(await before.json()).toMatchObject({ requestId, publisherId: 'pub_demo', subject: 'userKey', subjectSha256, external: { clickhouse: 'done', iceberg: 'pending' }, completedAt: null })

    const asked: unknown[] = []
    const retry = createPrivacyRetry({
      client: env.ch.client, database: 'adc', logger: pino({ level: 'silent' }), clock: () => NOW + 60_000,
      erasers: [{ name: 'iceberg', erase: async () => 'pending', eraseStored: async (s) => (asked.push(s), 'done') }],
    })
    expect((await retry.retry()).done).toBeGreaterThanOrEqual(1)
    expect(asked).toContainEqual({ publisherId: 'pub_demo', subject: 'userKey', subjectSha256 })
    const after = await get(requestId)
    expect(await after.json()).toMatchObject({ requestId, external: { clickhouse: 'done', iceberg: 'done' }, completedAt: NOW + 60_000 })
    expect((await retry.retry()).retried).toBe(0)

    expect((await get('01JD0000000000000000000000')).status).toBe(404)
    expect((await get(requestId, DEMO_DEFAULTS.publisherKey)).status).toBe(403)
  })
})

describe('a request the process did not finish', () => {
  const quiet = pino({ level: 'silent' })
  const lakeDone: RawEraser = { name: 'iceberg', erase: async () => 'done', eraseStored: async () => 'done' }

  it('is on record before anything is erased, and the retry erases its ClickHouse rows by the stored hash', async () => {
    await insertRows(env.ch.client, 'adc.events_raw', [
      raw({ key: 'c1a', imp: 'imp_c1a', campaign: 'cmp_demo_cpm', ts: D + 3_600_000 }, 'user-crash'),
      raw({ key: 'c1b', imp: 'imp_c1b', campaign: 'cmp_demo_cpm', ts: D + 3_700_000 }, 'user-crash'),
      raw({ key: 'c1o', imp: 'imp_c1o', campaign: 'cmp_demo_cpm', ts: D + 3_700_000, publisher: 'pub_other' }, 'user-crash'),
    ])
    await insertRows(env.ch.client, 'adc.ivt_decisions', [
      { event_key: 'c1b', event_type: 'impression', campaign_id: 'cmp_demo_cpm', publisher_id: 'pub_demo', ts: '2026-10-10 01:01:40.000', score: 1, reasons: ['givt_known_bot'] },
    ])
    await insertRows(env.ch.client, 'adc.bad_rows', [
      { received_at: '2026-10-10 01:00:00.000', log_topic: 'ad-events', reason: 'sink_rejected', payload: JSON.stringify({ event: { publisherId: 'pub_demo', userKey: 'user-crash' }, client: {} }) },
    ])
    // The process dies inside the lake's erasure: the request's answer never comes, but its row was written first.
    const dying = createApiApp({
      clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: quiet, registry: new Registry(), clock: () => NOW,
      rawErasers: [{ name: 'iceberg', erase: async () => { throw new Error('process killed') } }],
    })
    const res = await dying.request('/v1/admin/privacy/delete', {
      method: 'POST', headers: { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ publisherId: 'pub_demo', userKey: 'user-crash' }),
    })
    expect(res.status).toBe(500)
    const sha = createHash('sha256').update('user-crash').digest('hex')
    const [own] = await q<{ request_id: string; external: Record<string, string>; deleted: Record<string, string | number> }>(
      `SELECT request_id, external, deleted FROM adc.privacy_requests WHERE subject_sha256 = '${sha}' AND follow_up_of = ''`,
    )
    expect(own!.external).toEqual({ clickhouse: 'pending', iceberg: 'pending' })
    expect(own!.deleted).toEqual({ events_raw: 2, ivt_decisions: 1, bad_rows: 1 })
    const get = async () => (await env.app.request(`/v1/admin/privacy/requests/${own!.request_id}`, { headers: { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}` } })).json()
    // Its ClickHouse rows went before the lake failed; the status still says pending for the lake.
    expect(await get()).toMatchObject({ external: { iceberg: 'pending' }, completedAt: null })

    // Had it died before ClickHouse, the retry would erase them by the hash: put them back to see it.
    await insertRows(env.ch.client, 'adc.events_raw', [raw({ key: 'c1c', imp: 'imp_c1c', campaign: 'cmp_demo_cpm', ts: D + 3_800_000 }, 'user-crash')])
    await insertPrivacyRow(env.ch.client, 'adc', {
      requestId: ulid(NOW + 10), at: NOW + 10, by: 'admin_demo', publisherId: 'pub_demo', subject: 'userKey', subjectSha256: sha,
      deleted: { events_raw: 1, ivt_decisions: 0, bad_rows: 0 }, external: { clickhouse: 'pending', iceberg: 'pending' },
    })
    const retry = createPrivacyRetry({ client: env.ch.client, database: 'adc', logger: quiet, clock: () => NOW + 60_000, erasers: [lakeDone] })
    expect(await retry.retry()).toMatchObject({ done: 2, pending: 0 })
    expect(await q(`SELECT event_key FROM adc.events_raw WHERE user_key = 'user-crash' ORDER BY event_key`)).toEqual([{ event_key: 'c1o' }])
    expect(await q(`SELECT count() AS n FROM adc.ivt_decisions WHERE event_key IN ('c1b', 'c1c')`)).toEqual([{ n: 0 }])
    expect(JSON.stringify(await q(`SELECT payload FROM adc.bad_rows`))).not.toContain('user-crash')
    expect(await get()).toMatchObject({ external: { clickhouse: 'done', iceberg: 'done' }, completedAt: NOW + 60_000 })
    expect((await retry.retry()).retried).toBe(0)
  })

  it('records a store the retry could not finish yet without closing the request, and finishes it on a later run', async () => {
    const sha = createHash('sha256').update('user-later').digest('hex')
    const requestId = ulid(NOW + 20)
    await insertPrivacyRow(env.ch.client, 'adc', {
      requestId, at: NOW + 20, by: 'admin_demo', publisherId: 'pub_demo', subject: 'userKey', subjectSha256: sha,
      deleted: { events_raw: 0, ivt_decisions: 0, bad_rows: 0 }, external: { clickhouse: 'pending', iceberg: 'pending' },
    })
    let lakeUp = false
    const lake: RawEraser = { name: 'iceberg', erase: async () => 'pending', eraseStored: async () => (lakeUp ? 'done' : 'pending') }
    let at = NOW + 60_000
    const retry = createPrivacyRetry({ client: env.ch.client, database: 'adc', logger: quiet, clock: () => at, erasers: [lake] })
    expect(await retry.retry()).toMatchObject({ retried: 1, done: 0, pending: 1 })
    const status = async () => readPrivacyRequest({ client: env.ch.client, database: 'adc' }, requestId)
    expect(await status()).toMatchObject({ external: { clickhouse: 'done', iceberg: 'pending' }, completedAt: null })
    // Nothing finished: no further row.
    at += 60_000
    expect(await retry.retry()).toMatchObject({ retried: 1, pending: 1 })
    expect(await q(`SELECT count() AS n FROM adc.privacy_requests WHERE follow_up_of = '${requestId}'`)).toEqual([{ n: 1 }])
    lakeUp = true
    at += 60_000
    expect(await retry.retry()).toMatchObject({ retried: 1, done: 1 })
    expect(await status()).toMatchObject({ external: { clickhouse: 'done', iceberg: 'done' }, completedAt: at })
  })
})

describe('the retry schedule without a lake', () => {
  it('retries only while the lease is held here', async () => {
    const requestId = ulid(NOW + 30)
    await insertPrivacyRow(env.ch.client, 'adc', {
      requestId, at: NOW + 30, by: 'admin_demo', publisherId: 'pub_demo', subject: 'userKey', subjectSha256: createHash('sha256').update('user-sched').digest('hex'),
      deleted: { events_raw: 0, ivt_decisions: 0, bad_rows: 0 }, external: { clickhouse: 'pending' },
    })
    let held = false
    const retry = createPrivacyRetry({ client: env.ch.client, database: 'adc', logger: pino({ level: 'silent' }), clock: () => NOW + 60_000, erasers: [] })
    retry.start({ intervalMs: 25, lease: { held: () => held } })
    const status = () => readPrivacyRequest({ client: env.ch.client, database: 'adc' }, requestId)
    try {
      await new Promise((r) => setTimeout(r, 200))
      expect(await status()).toMatchObject({ external: { clickhouse: 'pending' }, completedAt: null })
      held = true
      const deadline = Date.now() + 10_000
      while ((await status())?.completedAt === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      expect(await status()).toMatchObject({ external: { clickhouse: 'done' }, completedAt: NOW + 60_000 })
    } finally {
      await retry.stop()
    }
  })
})

describe('what a userKey may hold', () => {
  it("refuses a lone surrogate or a control character (no event can carry one), so a request never erases another person's rows", async () => {
    // U+FFFD is a userKey an event may carry; a lone surrogate reaches the engine (and the hash) as U+FFFD.
    await insertRows(env.ch.client, 'adc.events_raw', [raw({ key: 'ff1', imp: 'imp_ff1', campaign: 'cmp_demo_cpm', ts: D + 3_600_000 }, '\ufffd')])
    for (const userKey of ['\ud800', 'a\udc00', 'user\u0000-2', 'user-2\n']) {
      const res = await del({ publisherId: 'pub_demo', userKey })
      expect(res.status, JSON.stringify(userKey)).toBe(400)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_body')
    }
    expect(await q(`SELECT event_key FROM adc.events_raw WHERE event_key IN ('ff1', 'u2a') ORDER BY event_key`)).toEqual([{ event_key: 'ff1' }, { event_key: 'u2a' }])
    // The person named by U+FFFD itself is erased as asked.
    const res = await del({ publisherId: 'pub_demo', userKey: '\ufffd' })
    expect(((await res.json()) as { deleted: Record<string, number> }).deleted.events_raw).toBe(1)
  })
})

describe('retrying pending erasures', () => {
  it('reaches every pending request in turn, even when more than a run takes stay pending ahead of it', async () => {
    const quiet = pino({ level: 'silent' })
    // Whatever earlier tests left pending is finished first.
    await createPrivacyRetry({ client: env.ch.client, database: 'adc', logger: quiet, erasers: [{ name: 'iceberg', erase: async () => 'pending', eraseStored: async () => 'done' }] }).retry()
    const ids = ['stuck-1', 'stuck-2', 'later-3'].map((k) => createHash('sha256').update(k).digest('hex'))
    await insertRows(env.ch.client, 'adc.privacy_requests', ids.map((sha, i) => ({
      request_id: ulid(NOW + i * 1000), requested_at: chTime(NOW + i * 1000), requested_by: 'admin_demo', publisher_id: 'pub_demo',
      subject: 'userKey', subject_sha256: sha, deleted: { events_raw: 0, ivt_decisions: 0, bad_rows: 0 }, external: { iceberg: 'pending' },
    })))
    const stuck = new Set(ids.slice(0, 2))
    const tried: string[] = []
    // The two oldest stay pending for good (a tag holds their files); a run takes two requests.
    const retry = createPrivacyRetry({
      client: env.ch.client, database: 'adc', logger: quiet, batchSize: 2, clock: () => NOW + 60_000,
      erasers: [{ name: 'iceberg', erase: async () => 'pending', eraseStored: async (s) => (tried.push(s.subjectSha256), stuck.has(s.subjectSha256) ? 'pending' : 'done') }],
    })
    for (let run = 0; run < 3; run++) await retry.retry()
    expect(tried).toContain(ids[2])
  })
})
