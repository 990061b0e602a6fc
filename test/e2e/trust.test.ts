import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { monotonicFactory } from 'ulid'
import { idempotencyKey, mintToken } from '@adc/schemas'
import { BROWSER_UA, DEV_ADMIN_KEY, adminCall, type CreatedPublisher, basicAuth, startCore, startEdge, eventually, type CoreHandle, type EdgeHandle } from './system.js'

/**
 * What a client controls cannot buy it a billable event, nor cost another publisher one, through
 * the real edge (workerd) and core, judged by the accounting report of each publisher's day:
 * - without consent a known bot is still judged by its agent (`givt_known_bot`, not billed);
 * - a link scanner opening a click link first does not make the person's click a `repeat_click`;
 * - another publisher sending the same impression id first does not make a publisher's own
 *   impression a `duplicate_impression`;
 * - a server key in the beacon's URL is refused;
 * - a campaign booked with one publisher bills no other publisher's events: the edge refuses them,
 *   and one written straight into the log is kept unbilled (`unknown_campaign`).
 */
const BOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
const ulid = monotonicFactory()
const runId = Math.random().toString(36).slice(2, 8)

let core: CoreHandle
let edge: EdgeHandle


interface PublisherDay {
  publisherId: string
  core: { accepted: number; billed: number; keptByReason: Record<string, number> }
}

const admin = (method: string, path: string, body?: unknown) => adminCall(core, method, path, body)

const impression = (publisherId: string, impressionId = `imp_${runId}_${ulid()}`, over: Record<string, unknown> = {}) => ({
  eventId: ulid(), ts: Date.now() - 5_000, adId: 'ad_1', campaignId: 'cmp_demo_cpc', publisherId, requestId: 'req_1', impressionId, channel: 'web', ...over,
})

async function batch(p: CreatedPublisher, events: unknown[]): Promise<{ status: number; body: any }> {
  const res = await fetch(`${edge.url}/v1/events/impressions:batch`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${p.apiKey}`, 'user-agent': BROWSER_UA }, body: JSON.stringify({ events }),
  })
  return { status: res.status, body: await res.json() }
}

/** The publisher's day in the accounting report, once core has accepted `accepted` of its events. */
async function dayOf(publisherId: string, accepted: number): Promise<PublisherDay> {
  const day = new Date().toISOString().slice(0, 10)
  const read = async (): Promise<PublisherDay | undefined> => {
    const res = await fetch(`${core.url}/v1/reports/accounting?day=${day}`, { headers: { authorization: `Bearer ${DEV_ADMIN_KEY}` } })
    return ((await res.json()) as { publishers: PublisherDay[] }).publishers.find((p) => p.publisherId === publisherId)
  }
  const got = await eventually(read, (p) => (p?.core.accepted ?? 0) >= accepted, 45_000)
  expect(got, `accounting for ${publisherId}`).toBeDefined()
  return got!
}

const pubs: CreatedPublisher[] = []

beforeAll(async () => {
  core = await startCore()
  edge = await startEdge(core)
  for (const name of ['a', 'b', 'c', 'd']) {
    const created = await admin('POST', '/v1/admin/publishers', { id: `pub_trust_${name}_${runId}`, name })
    expect(created.status).toBe(201)
    pubs.push(created.body as CreatedPublisher)
  }
  // The edge sees new publishers with its next config pull (TTL 1 s here). Until then a key is
  // unknown (401); once known, an empty batch is 400 (a batch holds at least one event).
  for (const p of pubs) expect((await eventually(() => batch(p, []), (r) => r.status !== 401, 20_000)).status).toBe(400)
}, 240_000)

afterAll(async () => {
  await edge?.stop()
  await core?.stop()
})

describe('what a client controls, through the whole path', () => {
  it('judges a known bot by its agent without consent, and refuses a server key in the beacon URL', async () => {
    const p = pubs[0]!
    const beacon = (key: string, body: unknown) =>
      fetch(`${edge.url}/v1/beacon?k=${key}`, { method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': BOT }, body: JSON.stringify(body) })
    const refused = await beacon(p.apiKey, { events: [{ type: 'impression', ...impression(p.id) }] })
    expect(refused.status).toBe(403)
    expect(((await refused.json()) as any).error.code).toBe('forbidden')
    const sent = await beacon(p.publicKey, { events: [{ type: 'impression', ...impression(p.id, undefined, { consent: false }) }] })
    expect(sent.status).toBe(202)
    const day = await dayOf(p.id, 1)
    expect(day.core).toMatchObject({ accepted: 1, billed: 0, keptByReason: { givt_known_bot: 1 } })
  })

  it("counts the person's click after a link scanner opened the link first (the scanner's is prefetch_click)", async () => {
    const p = pubs[1]!
    const imp = impression(p.id)
    expect((await batch(p, [imp])).body.accepted).toBe(1)
    await dayOf(p.id, 1) // the impression is in before its clicks
    const token = await mintToken({
      impressionId: imp.impressionId, campaignId: imp.campaignId, adId: imp.adId, publisherId: p.id, requestId: imp.requestId,
      exp: Math.floor(Date.now() / 1000) + 600, url: 'https://advertiser.example/landing',
    }, p.signingKeyId, p.signingSecret)
    const scanner = await fetch(`${edge.url}/c/${token}`, { method: 'HEAD', redirect: 'manual', headers: { 'user-agent': BROWSER_UA } })
    expect(scanner.status).toBe(302)
    await dayOf(p.id, 2) // the scanner's visit is in first
    const person = await fetch(`${edge.url}/c/${token}`, { redirect: 'manual', headers: { 'user-agent': BROWSER_UA } })
    await person.arrayBuffer()
    expect(person.status).toBe(302)
    const day = await dayOf(p.id, 3)
    expect(day.core.keptByReason).toEqual({ prefetch_click: 1 })
    expect(day.core).toMatchObject({ accepted: 3, billed: 2 })
  })

  it("bills a publisher's impression that another publisher sent the same id of first", async () => {
    const [, , own] = pubs
    const other = pubs[0]!
    const id = `imp_${runId}_shared`
    expect((await batch(other, [impression(other.id, id)])).body.accepted).toBe(1)
    expect((await batch(own!, [impression(own!.id, id)])).body.accepted).toBe(1)
    const day = await dayOf(own!.id, 1)
    expect(day.core).toMatchObject({ accepted: 1, billed: 1 })
    expect(day.core.keptByReason).toEqual({})
  })

  it("bills no other publisher's events for a campaign booked with one publisher, at the edge or written into the log", async () => {
    const [, , own, other] = pubs as [CreatedPublisher, CreatedPublisher, CreatedPublisher, CreatedPublisher]
    const campaignId = `cmp_trust_only_${runId}`
    const booked = await admin('POST', '/v1/admin/campaigns', { id: campaignId, advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 2_000_000 }, publisherIds: [own.id] })
    expect(booked.status).toBe(201)
    expect(booked.body.publisherIds).toEqual([own.id])
    // Its own publisher's impression is accepted once the edge has pulled the booking.
    const mine = await eventually(() => batch(own, [impression(own.id, undefined, { campaignId })]), (r) => r.body.accepted === 1, 15_000)
    expect(mine.body.accepted).toBe(1)
    // Another publisher's, for the same campaign, is refused with the reason.
    const theirs = await batch(other, [impression(other.id, undefined, { campaignId }), impression(other.id)])
    expect(theirs.status).toBe(202)
    expect(theirs.body.results.map((r: any) => [r.status, r.code])).toEqual([['rejected', 'unknown_campaign'], ['accepted', undefined]])
    expect(theirs.body.results[0].message).toContain(`not booked with publisher ${other.id}`)
    // Written straight into the log (the edge's credentials, leaked): kept, never billed.
    const ev = impression(other.id, undefined, { campaignId })
    const envelope = {
      v: 1, key: await idempotencyKey(other.id, 'impression', ev.eventId), receivedAt: Date.now(),
      edge: { dedupe: 'new', source: 'batch' }, client: { ua: BROWSER_UA }, type: 'impression', event: ev,
    }
    const wrote = await fetch(`${core.internalUrl}/topics/ad-events`, {
      method: 'POST', headers: { 'content-type': 'application/vnd.kafka.json.v2+json', authorization: basicAuth(core.proxyAuth) },
      body: JSON.stringify({ records: [{ key: ev.impressionId, value: envelope }] }),
    })
    expect(wrote.status).toBe(200)
    const day = await dayOf(other.id, 2)
    expect(day.core).toMatchObject({ accepted: 2, billed: 1, keptByReason: { unknown_campaign: 1 } })
    // The own publisher's (after the shared-id test's impression, when that ran first): all billed.
    const mineDay = (await dayOf(own.id, 1)).core
    expect(mineDay.billed).toBe(mineDay.accepted)
    expect(mineDay.keptByReason).toEqual({})
  })
})
