import { SELF } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { envelopeSchema } from '@adc/schemas'
import { beforeEach, describe, expect, it } from 'vitest'
import { commit } from '../ingest/commit.js'
import { prepare } from '../ingest/prepare.js'
import { sendStats } from '../ingest/stats-batcher.js'
import { settingsFrom } from '../settings.js'
import { TenantIndex } from '../tenants/tenants.js'
import { EDGE, click, confirmed, eventually, impression, postBatch, proxyControl, proxyReceived, proxyReset } from '../../test/helpers.js'

const TEST_CONFIG = { version: 1, campaignIds: ['cmp_1'], campaignPublishers: {}, publishers: [] }

beforeEach(async () => {
  await proxyReset()
})

describe('POST /v1/events/impressions:batch', () => {
  it('accepts valid events, forwards them as one REST proxy call of v1 envelopes keyed by impressionId', async () => {
    const events = [impression(), impression(), impression()]
    const res = await postBatch('impressions', { events })
    expect(res.status).toBe(202)
    const body = await res.json<any>()
    expect(body).toMatchObject({ received: 3, accepted: 3, duplicate: 0, rejected: 0 })
    expect(body.results.map((r: any) => r.status)).toEqual(['accepted', 'accepted', 'accepted'])
    const got = await proxyReceived()
    expect(got.calls).toBe(1)
    expect(got.records.map((r) => r.key)).toEqual(events.map((e) => e.impressionId))
    for (const r of got.records) {
      expect(envelopeSchema.safeParse(r.value).success).toBe(true)
      expect(r.value.client).toMatchObject({ ua: 'Mozilla/5.0 test', ipPrefix: '203.0.113.0/24' })
      expect(r.value.client.ipHash).toMatch(/^[0-9a-f]{32}$/)
      expect(JSON.stringify(r.value)).not.toContain('203.0.113.77')
      // The version of the tenant config the event was checked against (vitest.config.ts's is 1).
      expect(r.value.edge).toMatchObject({ dedupe: 'new', source: 'batch', configVersion: 1 })
    }
  })

  it('answers each event on its own: bad ones rejected with codes, good ones beside them accepted', async () => {
    const good = impression()
    const events = [
      good,
      { ...impression(), adId: undefined },
      impression({ ts: Date.now() + 10 * 60_000 }),
      impression({ ts: Date.now() - 25 * 3600_000 }),
      impression({ publisherId: 'pub_other' }),
      'not an object',
      impression({ ts: '2020-13-45' }),
      impression({ extra: 'field' }),
    ]
    const res = await postBatch('impressions', { events })
    expect(res.status).toBe(202)
    const body = await res.json<any>()
    expect(body).toMatchObject({ received: 8, accepted: 1, duplicate: 0, rejected: 7 })
    expect(body.results.map((r: any) => [r.status, r.code, r.httpStatus])).toEqual([
      ['accepted', undefined, undefined],
      ['rejected', 'invalid_event', 400],
      ['rejected', 'clock_skew', 422],
      ['rejected', 'clock_skew', 422],
      ['rejected', 'publisher_mismatch', 403],
      ['rejected', 'invalid_event', 400],
      ['rejected', 'invalid_event', 400],
      ['rejected', 'invalid_event', 400],
    ])
    expect(body.results[1].message).toContain('adId')
    expect((await proxyReceived()).records.map((r) => r.key)).toEqual([good.impressionId])
  })

  it('a retried batch is reported duplicate (409 per event) and not forwarded again', async () => {
    const events = [impression(), impression()]
    expect((await postBatch('impressions', { events })).status).toBe(202)
    await confirmed('impression', events)
    const again = await postBatch('impressions', { events: [...events, impression()] })
    const body = await again.json<any>()
    expect(body).toMatchObject({ received: 3, accepted: 1, duplicate: 2 })
    expect(body.results[0]).toMatchObject({ status: 'duplicate', code: 'duplicate_delivery', httpStatus: 409 })
    expect((await proxyReceived()).records).toHaveLength(3)
  })

  it('the same eventId twice in one batch is accepted once', async () => {
    const e = impression()
    const body = await (await postBatch('impressions', { events: [e, e] })).json<any>()
    expect(body.results.map((r: any) => r.status)).toEqual(['accepted', 'duplicate'])
  })

  it('an impression and a click with the same eventId are different events', async () => {
    const e = impression()
    await postBatch('impressions', { events: [e] })
    const body = await (await postBatch('clicks', { events: [{ ...e, clickId: 'clk_1' }] })).json<any>()
    expect(body.accepted).toBe(1)
  })

  it('consent false keeps no user key and no IP hash, only what fraud detection needs (agent, network prefix)', async () => {
    await postBatch('impressions', { events: [impression({ consent: false, userKey: 'u-1' })] })
    const [r] = (await proxyReceived()).records
    expect(Object.keys(r!.value.client).filter((k) => k !== 'ua' && k !== 'ipPrefix')).toEqual([])
    expect(r!.value.client.ipHash).toBeUndefined()
    expect(r!.value.event.userKey).toBeUndefined()
  })

  it('server-to-server ua and ip are truncated and hashed like observed ones, never forwarded raw', async () => {
    const ip = '2001:db8:85a3:1234:5678:8a2e:370:7334'
    await postBatch('impressions', { events: [impression({ channel: 's2s', ua: 'Mozilla/5.0 (iPhone)', ip })] })
    const [r] = (await proxyReceived()).records
    expect(r!.value.client).toMatchObject({ ua: 'Mozilla/5.0 (iPhone)', ipPrefix: '2001:db8:85a3::/48' })
    expect(r!.value.event.ip).toBeUndefined()
    expect(r!.value.event.ua).toBeUndefined()
    expect(r!.value.edge.source).toBe('s2s')
    expect(JSON.stringify(r!.value)).not.toContain('7334')
  })

  it('sends one edge-stats record per batch, keyed by publisher', async () => {
    await postBatch('impressions', { events: [impression(), impression({ adId: '' })] })
    const stats = await eventually(() => proxyReceived('edge-stats'), (v) => v.records.length === 1)
    expect(stats.records[0]).toMatchObject({
      key: 'pub_test',
      value: { v: 1, kind: 'edge_stats', publisherId: 'pub_test', received: 2, accepted: 1, duplicate: 0, rejected: 1, rejectedByReason: { invalid_event: 1 } },
    })
    expect(stats.records[0]!.value.minute % 60_000).toBe(0)
  })

  it('sums the edge-stats of requests inside one flush window into one REST proxy call, each event counted once', async () => {
    const s = { ...settingsFrom(env), statsFlushMs: 150 }
    const now = Date.now()
    const flushes = [
      sendStats(env, s, 'pub_test', [{ index: 0, status: 'accepted' }, { index: 1, status: 'rejected', code: 'invalid_event' }], now),
      sendStats(env, s, 'pub_test', [{ index: 0, status: 'duplicate', code: 'duplicate_delivery' }], now),
      sendStats(env, s, 'pub_other', [{ index: 0, status: 'accepted' }, { index: 1, status: 'failed', code: 'upstream_unavailable' }], now),
    ]
    await Promise.all(flushes)
    const stats = await proxyReceived('edge-stats')
    expect(stats.calls).toBe(1)
    expect(stats.records.map((r) => r.value)).toEqual([
      expect.objectContaining({ publisherId: 'pub_test', received: 3, accepted: 1, duplicate: 1, rejected: 1, rejectedByReason: { invalid_event: 1 } }),
      expect.objectContaining({ publisherId: 'pub_other', received: 1, accepted: 1, duplicate: 0, rejected: 0 }),
    ])
  })

  it('clicks:batch validates clicks (clickId required)', async () => {
    const body = await (await postBatch('clicks', { events: [click(), impression()] })).json<any>()
    expect(body.results.map((r: any) => r.status)).toEqual(['accepted', 'rejected'])
  })
})

describe('whole-request errors', () => {
  const err = async (res: Response) => ({ status: res.status, code: (await res.json<any>()).error?.code })

  it('401 without or with an unknown key, 403 for an inactive publisher', async () => {
    expect(await err(await postBatch('impressions', { events: [impression()] }, { key: null }))).toEqual({ status: 401, code: 'unauthorized' })
    expect(await err(await postBatch('impressions', { events: [impression()] }, { key: 'pk_nope' }))).toEqual({ status: 401, code: 'unauthorized' })
    expect(await err(await postBatch('impressions', { events: [impression()] }, { key: 'pk_gone' }))).toEqual({ status: 403, code: 'forbidden' })
  })

  it('415 for a non-JSON content type, 400 bad_json, 400 invalid_batch', async () => {
    expect(await err(await postBatch('impressions', null, { headers: { 'content-type': 'text/plain' }, raw: '{}' }))).toEqual({ status: 415, code: 'unsupported_media_type' })
    expect(await err(await postBatch('impressions', null, { raw: '{"events": [' }))).toEqual({ status: 400, code: 'bad_json' })
    expect(await err(await postBatch('impressions', { events: [] }))).toEqual({ status: 400, code: 'invalid_batch' })
    expect(await err(await postBatch('impressions', { evnts: [impression()] }))).toEqual({ status: 400, code: 'invalid_batch' })
  })

  it('413 for more than 500 events or more than 1 MiB', async () => {
    const many = Array.from({ length: 501 }, () => impression())
    expect(await err(await postBatch('impressions', { events: many }))).toEqual({ status: 413, code: 'payload_too_large' })
    const huge = JSON.stringify({ events: [impression({ placement: 'x'.repeat(1024 * 1024) })] })
    expect(await err(await postBatch('impressions', null, { raw: huge }))).toEqual({ status: 413, code: 'payload_too_large' })
  })

  it('unknown routes answer 404 in the error shape', async () => {
    expect(await err(await SELF.fetch(`${EDGE}/nope`))).toEqual({ status: 404, code: 'not_found' })
  })
})

describe('delivery', () => {
  it('retries records the proxy refuses as retriable and delivers all of them within the request', async () => {
    await proxyControl({ mode: 'reject', times: 1, rejectEvery: 2, rejectCode: 2 })
    const events = Array.from({ length: 5 }, () => impression())
    const body = await (await postBatch('impressions', { events })).json<any>()
    expect(body.accepted).toBe(5)
    const got = await proxyReceived()
    expect(got.calls).toBe(2)
    expect(new Set(got.records.map((r) => r.key))).toEqual(new Set(events.map((e) => e.impressionId)))
  })

  it('when the proxy answers 500 the events are spooled durably and still answered 202', async () => {
    await proxyControl({ mode: 'fail500' })
    const events = [impression(), impression()]
    const res = await postBatch('impressions', { events })
    expect(res.status).toBe(202)
    expect((await res.json<any>()).accepted).toBe(2)
    const spool = env.SPOOL.get(env.SPOOL.idFromName('pub:pub_test'))
    expect((await spool.stats()).depth).toBeGreaterThanOrEqual(2)
  })

  it('when neither the proxy nor the spool can take events: not accepted, and their keys released so a retry is new', async () => {
    await proxyControl({ mode: 'fail500' })
    const settings = settingsFrom(env)
    const brokenSpool = { idFromName: () => ({}), get: () => ({ enqueue: () => Promise.reject(new Error('spool down')) }) }
    const events = [impression(), impression()]
    const publisher = { id: 'pub_test', apiKeyHashes: [], publicKeyHashes: [], signingKeys: {}, requestSigningKeys: {}, appRequestSigningKeys: {}, rateLimit: { perSecond: 1, burst: 1 }, active: true }
    const ctx = { publisher, credential: 'server_key' as const, tenants: new TenantIndex(TEST_CONFIG), source: 'batch' as const, receivedAt: Date.now(), observed: {}, edge: {} }
    const brokenEnv = { ...env, SPOOL: brokenSpool } as unknown as typeof env
    const first = await commit(await prepare(events.map((raw) => ({ type: 'impression' as const, raw })), ctx, settings), brokenEnv, settings)
    expect(first.durable).toBe(false)
    expect(first.results.map((r) => r.status)).toEqual(['failed', 'failed'])
    expect(first.counts.accepted).toBe(0)
    await proxyControl({ mode: 'ok' })
    const res = await postBatch('impressions', { events })
    expect((await res.json<any>()).accepted).toBe(2)
  })
})
