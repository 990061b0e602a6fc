import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { monotonicFactory } from 'ulid'
import { startCore, startEdge, eventually, type CoreHandle, type EdgeHandle } from './system.js'

/**
 * A privacy request end to end: events of two users through the edge (workerd) → core → chDB, then
 * `POST /v1/admin/privacy/delete` for one of them. Seen over public HTTP: the accounting report
 * (which reads the raw rows) drops exactly that user's events, the realtime aggregates stay.
 */
const ADMIN = { authorization: 'Bearer admin_demo_dev', 'content-type': 'application/json' }
const ulid = monotonicFactory()
const run = Math.random().toString(36).slice(2, 8)
let core: CoreHandle
let edge: EdgeHandle

beforeAll(async () => {
  core = await startCore({ ICEBERG_ENABLED: 'false' })
  edge = await startEdge(core)
}, 240_000)

afterAll(async () => {
  await edge?.stop()
  await core?.stop()
})

const impression = (i: number, userKey: string) => ({
  eventId: ulid(), ts: Date.now() - 30_000, adId: 'ad_p', campaignId: 'cmp_demo_cpm', publisherId: 'pub_demo',
  requestId: `req_p_${run}_${i}`, impressionId: `imp_p_${run}_${i}`, channel: 's2s', device: 'desktop', geo: 'US', userKey,
  ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15', ip: `81.2.69.${i}`,
})

async function coreAccepted(): Promise<number> {
  const day = new Date().toISOString().slice(0, 10)
  const res = await fetch(`${core.url}/v1/reports/accounting?day=${day}`, { headers: ADMIN })
  const body = (await res.json()) as { publishers: Array<{ publisherId: string; core: { accepted: number } }> }
  return body.publishers.find((p) => p.publisherId === 'pub_demo')?.core.accepted ?? 0
}

async function impressions(): Promise<number> {
  const q = `campaignId=cmp_demo_cpm&from=${new Date(Date.now() - 3600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`
  const res = await fetch(`${core.url}/v1/metrics/realtime?${q}`, { headers: { authorization: 'Bearer ak_demo_advertiser_dev' } })
  return ((await res.json()) as { totals: { impressions: number } }).totals.impressions
}

describe('POST /v1/admin/privacy/delete through the running system', () => {
  it("removes one user's raw rows, keeps the other user's and the aggregates, and answers the audit record", async () => {
    const user = `user_gone_${run}`
    const events = [impression(1, user), impression(2, user), impression(3, `user_kept_${run}`)]
    const res = await fetch(`${edge.url}/v1/events/impressions:batch`, {
      method: 'POST', headers: { authorization: 'Bearer pk_demo_publisher_dev', 'content-type': 'application/json' }, body: JSON.stringify({ events }),
    })
    expect(((await res.json()) as { accepted: number }).accepted).toBe(3)
    const before = await eventually(coreAccepted, (n) => n >= 3, 60_000)
    expect(before).toBe(3)
    const aggregates = await eventually(impressions, (n) => n >= 3, 30_000)

    const erased = await fetch(`${core.url}/v1/admin/privacy/delete`, { method: 'POST', headers: ADMIN, body: JSON.stringify({ publisherId: 'pub_demo', userKey: user }) })
    expect(erased.status).toBe(200)
    expect(await erased.json()).toMatchObject({ publisherId: 'pub_demo', subject: 'userKey', deleted: { events_raw: 2 }, external: { iceberg: 'pending' } })
    expect(await coreAccepted()).toBe(1)
    expect(await impressions()).toBe(aggregates)
  })
})
