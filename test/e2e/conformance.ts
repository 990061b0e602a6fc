/**
 * What the SDK conformance suites (JS and Kotlin) share: the system under test, a publisher and a
 * campaign of each test's own, and the exactly-once check over core's metrics and books. Counts are
 * read per campaign, so the tests cannot see each other's events.
 */
import { expect } from 'vitest'
import { eventually, startCore, startEdge, type CoreHandle, type EdgeHandle } from './system.js'

const ADMIN_KEY = 'admin_demo_dev'
const ADV_KEY = 'ak_demo_advertiser_dev'

export interface Tenant {
  publisherId: string
  campaignId: string
  /** Server-scope API key. */
  apiKey: string
  /** Public-scope API key (beacon, tag). */
  publicKey: string
  /**
   * The request signing key (purpose `request`; the token key stays server-side), of the scope the
   * test asked for: `server` (the SDK on a publisher's server, naming the end user's `ip`), or `app`
   * (the SDK inside an app: clicks need their clickToken, the edge keeps the IP it observes).
   */
  signingKeyId: string
  signingSecret: string
  /** The token signing key the ad server mints click tokens with (never in an app). */
  tokenKeyId: string
  tokenSecret: string
}

export interface PublisherBooks {
  publisherId: string
  edge: { accepted: number; duplicate: number }
  core: { accepted: number; billed: number; keptByReason: Record<string, number> }
}

/** Starts core and the edge; the helpers act on them once started. */
export function conformanceSystem(prefix: string) {
  const runId = Math.random().toString(36).slice(2, 8)
  let core: CoreHandle | undefined
  let edge: EdgeHandle | undefined

  async function start(): Promise<{ core: CoreHandle; edge: EdgeHandle }> {
    core = await startCore()
    edge = await startEdge(core)
    return { core, edge }
  }

  async function stop(): Promise<void> {
    await edge?.stop()
    await core?.stop()
  }

  async function admin<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${core!.url}${path}`, {
      method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const json = (await res.json()) as T
    expect(res.status, JSON.stringify(json)).toBeLessThan(300)
    return json
  }

  /**
   * A publisher and a campaign of the test's own; resolves once the edge knows the publisher. Its
   * request key is `server` scope unless asked otherwise: the suites' events name the end user's
   * `ip`, which only a server-scope signature may.
   */
  async function tenant(name: string, rateLimit = { perSecond: 100_000, burst: 200_000 }, requestSigningScope: 'app' | 'server' = 'server'): Promise<Tenant> {
    const publisherId = `pub_${prefix}${name}_${runId}`
    const campaignId = `cmp_${prefix}${name}_${runId}`
    // The campaign first: once the edge knows the publisher's key it knows the booked campaign too.
    await admin('POST', '/v1/admin/campaigns', { id: campaignId, advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 1000 } })
    const pub = await admin<{ apiKey: string; publicKey: string; requestSigningKeyId: string; requestSigningSecret: string; signingKeyId: string; signingSecret: string }>('POST', '/v1/admin/publishers', { id: publisherId, name, rateLimit, requestSigningScope })
    // Until the edge pulls the new config the key is unknown (401); an empty batch is 400 once it is known.
    const known = await eventually(async () => (await fetch(`${edge!.url}/v1/events/impressions:batch`, {
      method: 'POST', headers: { authorization: `Bearer ${pub.apiKey}`, 'content-type': 'application/json' }, body: '{"events":[]}',
    })).status, (s) => s !== 401, 20_000)
    expect(known).toBe(400)
    return { publisherId, campaignId, apiKey: pub.apiKey, publicKey: pub.publicKey, signingKeyId: pub.requestSigningKeyId, signingSecret: pub.requestSigningSecret, tokenKeyId: pub.signingKeyId, tokenSecret: pub.signingSecret }
  }

  /** Impressions as counted by core (billable or kept as IVT): each distinct event once. */
  async function counted(campaignId: string): Promise<number> {
    const from = new Date(Date.now() - 3600_000).toISOString()
    const to = new Date(Date.now() + 60_000).toISOString()
    const res = await fetch(`${core!.url}/v1/metrics/realtime?campaignId=${campaignId}&from=${from}&to=${to}`, { headers: { authorization: `Bearer ${ADV_KEY}` } })
    expect(res.status).toBe(200)
    const { totals } = (await res.json()) as { totals: { impressions: number; ivtImpressions: number } }
    return totals.impressions + totals.ivtImpressions
  }

  async function books(publisherId: string): Promise<PublisherBooks | undefined> {
    const day = new Date().toISOString().slice(0, 10)
    const report = await admin<{ publishers: PublisherBooks[] }>('GET', `/v1/reports/accounting?day=${day}`)
    return report.publishers.find((p) => p.publisherId === publisherId)
  }

  /**
   * Exactly once, twice over: the campaign counts `expected` impressions, and core's books for the
   * publisher hold `expected` distinct events: every extra delivery was a resend of the same event
   * (`duplicate_delivery`), never a second event for the same impression (`duplicate_impression`,
   * which a client minting a new id per retry would cause). `events`: all the publisher's events,
   * when it sent clicks too (@default `expected`).
   */
  async function expectExactlyOnce(t: Tenant, expected: number, events = expected): Promise<PublisherBooks> {
    const n = await eventually(() => counted(t.campaignId), (v) => v >= expected, 60_000)
    expect(n).toBe(expected)
    const pub = await eventually(() => books(t.publisherId), (p) => !!p && p.core.accepted >= events && p.core.accepted === p.edge.accepted, 60_000)
    expect(pub, JSON.stringify(pub)).toBeDefined()
    expect(pub!.core.keptByReason.duplicate_impression ?? 0, JSON.stringify(pub)).toBe(0)
    expect(pub!.core.accepted - (pub!.core.keptByReason.duplicate_delivery ?? 0), JSON.stringify(pub)).toBe(events)
    expect(await counted(t.campaignId)).toBe(expected)
    return pub!
  }

  return { runId, start, stop, admin, tenant, counted, books, expectExactlyOnce }
}
