import { createHash, createHmac } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { monotonicFactory } from 'ulid'
import { mintToken } from '@adc/schemas'
import { BROWSER_UA, adminCall, type CreatedPublisher, startCore, startEdge, eventually, type CoreHandle, type EdgeHandle } from './system.js'

/**
 * Publishers created through the admin API, through the real edge (workerd) and core: each gets
 * keys of its own that work at the edge, key kinds are kept apart, revocation reaches the edge
 * through the config pull (EDGE_CONFIG_TTL_MS = 1 s here), and only booked campaigns are accepted.
 */
const ulid = monotonicFactory()
const runId = Math.random().toString(36).slice(2, 8)

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


const admin = (method: string, path: string, body?: unknown) => adminCall(core, method, path, body)

function event(publisherId: string, over: Record<string, unknown> = {}) {
  return {
    eventId: ulid(), ts: Date.now() - 5_000, adId: 'ad_1', campaignId: 'cmp_demo_cpm', publisherId, requestId: 'req_1',
    impressionId: `imp_${runId}_${ulid()}`, channel: 'web', ua: BROWSER_UA, ip: '81.2.69.160', ...over,
  }
}

type Auth = { key: string } | { keyId: string; secret: string }

async function send(kind: 'impressions' | 'clicks', events: unknown[], auth: Auth): Promise<{ status: number; body: any }> {
  const path = `/v1/events/${kind}:batch`
  const body = JSON.stringify({ events })
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if ('key' in auth) headers.authorization = `Bearer ${auth.key}`
  else {
    const ts = Math.floor(Date.now() / 1000)
    const bodyHash = createHash('sha256').update(body).digest('hex')
    headers['x-adc-key-id'] = auth.keyId
    headers['x-adc-timestamp'] = String(ts)
    headers['x-adc-signature'] = createHmac('sha256', auth.secret).update(`${ts}.POST.${path}.${bodyHash}`).digest('base64url')
  }
  const res = await fetch(`${edge.url}${path}`, { method: 'POST', headers, body })
  return { status: res.status, body: await res.json() }
}

const token = (p: CreatedPublisher, ev: ReturnType<typeof event>, keyId = p.signingKeyId, secret = p.signingSecret) =>
  mintToken({
    impressionId: ev.impressionId, campaignId: ev.campaignId, adId: ev.adId, publisherId: p.id, requestId: ev.requestId,
    exp: Math.floor(Date.now() / 1000) + 600, url: 'https://advertiser.example/landing',
  }, keyId, secret)

const statusOf = async (url: string): Promise<number> => {
  const res = await fetch(url, { redirect: 'manual', headers: { 'user-agent': BROWSER_UA } })
  await res.arrayBuffer()
  return res.status
}

/** The per-event outcome, or the whole-request error code. */
const outcome = (r: { status: number; body: any }): string =>
  r.body.results ? `${r.body.results[0].status}${r.body.results[0].code ? `:${r.body.results[0].code}` : ''}` : `${r.status}:${r.body.error?.code}`

describe('publishers created through the admin API', () => {
  const pubs: CreatedPublisher[] = []

  it('each get working keys of their own: server key, request signature, pixel and click link', async () => {
    for (const name of ['a', 'b']) {
      const created = await admin('POST', '/v1/admin/publishers', { id: `pub_${name}_${runId}`, name })
      expect(created.status).toBe(201)
      pubs.push(created.body as CreatedPublisher)
    }
    expect(pubs[0]!.signingKeyId).not.toBe(pubs[1]!.signingKeyId)
    for (const p of pubs) {
      // The edge sees a new publisher with its next config pull (TTL 1 s).
      const first = await eventually(() => send('impressions', [event(p.id)], { key: p.apiKey }), (r) => r.status === 202, 15_000)
      expect(outcome(first)).toBe('accepted')
      expect(outcome(await send('impressions', [event(p.id)], { keyId: p.requestSigningKeyId, secret: p.requestSigningSecret }))).toBe('accepted')
      const ev = event(p.id)
      expect(await statusOf(`${edge.url}/v1/pixel.gif?t=${await token(p, ev)}`)).toBe(200)
      expect(await statusOf(`${edge.url}/c/${await token(p, ev)}`)).toBe(302)
    }
  })

  it('keeps key kinds apart: a public key sends no tokenless click, a request key mints no token, a token key signs no request', async () => {
    const p = pubs[0]!
    const imp = event(p.id)
    const clickEv = { ...imp, eventId: ulid(), clickId: `clk_${ulid()}` }
    expect(outcome(await send('impressions', [event(p.id)], { key: p.publicKey }))).toBe('accepted')
    expect(outcome(await send('clicks', [clickEv], { key: p.publicKey }))).toBe('rejected:click_token_required')
    expect(outcome(await send('clicks', [{ ...clickEv, eventId: ulid(), clickToken: await token(p, imp) }], { key: p.publicKey }))).toBe('accepted')
    expect(await statusOf(`${edge.url}/c/${await token(p, imp, p.requestSigningKeyId, p.requestSigningSecret)}`)).toBe(400)
    expect(outcome(await send('impressions', [event(p.id)], { keyId: p.signingKeyId, secret: p.signingSecret }))).toBe('401:unauthorized')
  })

  it('trusts an app-scope request key (the default) as the public key, a server-scope one as a server key', async () => {
    const p = pubs[1]!
    const app = { keyId: p.requestSigningKeyId, secret: p.requestSigningSecret }
    const imp = event(p.id)
    const clickEv = { ...imp, eventId: ulid(), clickId: `clk_${ulid()}` }
    expect(outcome(await send('clicks', [clickEv], app))).toBe('rejected:click_token_required')
    expect(outcome(await send('clicks', [{ ...clickEv, eventId: ulid(), clickToken: await token(p, imp) }], app))).toBe('accepted')
    const created = await admin('POST', `/v1/admin/publishers/${p.id}/signing-keys`, { purpose: 'request', scope: 'server' })
    expect(created.body).toMatchObject({ purpose: 'request', scope: 'server' })
    const server = { keyId: created.body.keyId as string, secret: created.body.signingSecret as string }
    const imp2 = event(p.id)
    const tokenless = { ...imp2, eventId: ulid(), clickId: `clk_${ulid()}` }
    // The edge knows the new key with its next config pull (TTL 1 s).
    const first = await eventually(() => send('clicks', [tokenless], server), (r) => r.status === 202, 15_000)
    expect(outcome(first)).toBe('accepted')
    expect((await admin('POST', `/v1/admin/publishers/${p.id}/signing-keys`, { purpose: 'token', scope: 'server' })).body.error.code).toBe('scope_not_applicable')
  })

  it('rejects events and tokens for a campaign nobody booked', async () => {
    const p = pubs[1]!
    expect(outcome(await send('impressions', [event(p.id, { campaignId: `cmp_nobody_${runId}` })], { key: p.apiKey }))).toBe('rejected:unknown_campaign')
    expect(await statusOf(`${edge.url}/c/${await token(p, event(p.id, { campaignId: `cmp_nobody_${runId}` }))}`)).toBe(422)
  })

  it('stops a revoked key at the edge within the config TTL, while a rotated-in key keeps working', async () => {
    const p = pubs[0]!
    const newKey = await admin('POST', `/v1/admin/publishers/${p.id}/api-keys`, { scope: 'server' })
    const newToken = await admin('POST', `/v1/admin/publishers/${p.id}/signing-keys`, { purpose: 'token' })
    expect([newKey.status, newToken.status]).toEqual([201, 201])
    const oldHash = createHash('sha256').update(p.apiKey).digest('hex')
    expect((await admin('DELETE', `/v1/admin/publishers/${p.id}/api-keys/${oldHash}`)).status).toBe(200)
    expect((await admin('DELETE', `/v1/admin/publishers/${p.id}/signing-keys/${p.requestSigningKeyId}`)).status).toBe(200)
    expect((await admin('DELETE', `/v1/admin/publishers/${p.id}/signing-keys/${p.signingKeyId}`)).status).toBe(200)
    const revokedAt = Date.now()
    const refused = await eventually(() => send('impressions', [event(p.id)], { key: p.apiKey }), (r) => r.status === 401, 15_000)
    expect(outcome(refused)).toBe('401:unauthorized')
    expect(Date.now() - revokedAt).toBeLessThan(10_000)
    expect(outcome(await send('impressions', [event(p.id)], { keyId: p.requestSigningKeyId, secret: p.requestSigningSecret }))).toBe('401:unauthorized')
    expect(await statusOf(`${edge.url}/v1/pixel.gif?t=${await token(p, event(p.id))}`)).toBe(400)
    // The keys added before the revocation work.
    expect(outcome(await send('impressions', [event(p.id)], { key: newKey.body.apiKey }))).toBe('accepted')
    expect(await statusOf(`${edge.url}/v1/pixel.gif?t=${await token(p, event(p.id), newToken.body.keyId, newToken.body.signingSecret)}`)).toBe(200)
    // The other publisher is untouched.
    expect(outcome(await send('impressions', [event(pubs[1]!.id)], { key: pubs[1]!.apiKey }))).toBe('accepted')
  })
})
