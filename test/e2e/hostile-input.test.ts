import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { monotonicFactory } from 'ulid'
import { partitionFor } from '@adc/schemas'
import { BROWSER_UA, startCore, startEdge, eventually, type CoreHandle, type EdgeHandle } from './system.js'

/**
 * Hostile input over the whole path: edge in workerd → REST proxy → log → processor → ClickHouse.
 * fast-check puts awkward values into every field a client controls (lone surrogates, control
 * characters, TSV and SQL metacharacters, wrong types, prototype keys, huge numbers). The promise
 * under test is the system's first rule: whatever the edge accepts is counted or kept with a
 * reason, within seconds, and no ordinary event waits behind it on any log partition. The accounting
 * report balances afterwards.
 */
const SERVER_KEY = process.env.E2E_SERVER_KEY ?? 'pk_demo_publisher_dev'
const PUBLIC_KEY = 'pkpub_demo_publisher_dev'
const ADMIN_KEY = 'admin_demo_dev'
const ADV_KEY = 'ak_demo_advertiser_dev'
const PARTITIONS = 8
const ulid = monotonicFactory()
const runId = Math.random().toString(36).slice(2, 8)

let core: CoreHandle
let edge: EdgeHandle

beforeAll(async () => {
  core = await startCore({ LOG_PARTITIONS: String(PARTITIONS) })
  edge = await startEdge(core)
}, 240_000)

afterAll(async () => {
  await edge?.stop()
  await core?.stop()
})


function ordinary(i: number, campaignId = 'cmp_demo_cpm') {
  return {
    eventId: ulid(), ts: Date.now() - 60_000, adId: 'ad_1', campaignId, publisherId: 'pub_demo',
    requestId: `req_${runId}_${i}`, impressionId: `imp_${runId}_${i}`, channel: 'web', device: 'desktop', geo: 'US',
    ua: BROWSER_UA, ip: `198.51.100.${i % 250}`,
  }
}

/** Strings that broke, or could break, some layer: JSON, TSV, SQL, UTF-8, Unicode, paths. */
const NASTY = [
  '\ud800', '\udfff', 'a\ud800b', '\udc00\ud800', '\u0000', 'a\u0000b', '\u0007', '\u001b[31m', '\u007f', '\u0085', '\u2028',
  '\t', '\n', '\r\n', 'a\tb\nc', '\\N', '\\', "'", '"', "'); DROP TABLE events_raw; --", '${x}', '{{x}}',
  '\ufeff', '\ufffe', '\uffff', '\u202e', '😀', 'e\u0301', 'x'.repeat(129), 'x'.repeat(1025), '', ' ', '../../etc/passwd',
  '%00', '\ud83d', 'imp_\ud83d\ude00',
]

const awkwardString = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
)

const awkwardValue = fc.oneof(
  { weight: 6, arbitrary: awkwardString },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, 0, -1, 1e308, -0, 2 ** 53, [], {}, ['a'], { a: 1 }) },
  { weight: 1, arbitrary: fc.double() },
)

const FIELDS = [
  'eventId', 'ts', 'adId', 'campaignId', 'publisherId', 'requestId', 'impressionId', 'clickId', 'userKey', 'channel',
  'device', 'geo', 'placement', 'consent', 'ua', 'ip', 'viewable', '__proto__', 'constructor', 'unknownField',
] as const

interface Mutation {
  field: (typeof FIELDS)[number]
  value: unknown
  click: boolean
}

const mutation: fc.Arbitrary<Mutation> = fc.record({ field: fc.constantFrom(...FIELDS), value: awkwardValue, click: fc.boolean() })

/** One event with one field replaced; written as JSON text so `__proto__` is a real own key. */
function hostileJson(m: Mutation, i: number): string {
  const base: Record<string, unknown> = ordinary(10_000 + i)
  if (m.click) base.clickId = `clk_${runId}_${i}`
  const entries = Object.entries(base).filter(([k]) => k !== m.field)
  const body = entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
  body.push(`${JSON.stringify(m.field)}:${JSON.stringify(m.value) ?? 'null'}`)
  return `{${body.join(',')}}`
}

interface BatchAnswer {
  received: number
  accepted: number
  duplicate: number
  rejected: number
  results: { index: number; status: string; code?: string; message?: string }[]
}

/** A well-behaved client: a 429 is retried whole after its Retry-After (the demo limit is 500/s). */
async function send(url: string, init: RequestInit): Promise<Response> {
  for (;;) {
    const res = await fetch(url, init)
    if (res.status !== 429) return res
    await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)))
  }
}

async function post(path: string, body: string, key = SERVER_KEY): Promise<{ status: number; body: BatchAnswer }> {
  const res = await send(`${edge.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body,
  })
  return { status: res.status, body: (await res.json()) as BatchAnswer }
}

async function adminGet<T>(path: string): Promise<T> {
  const res = await fetch(`${core.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  expect(res.status).toBe(200)
  return (await res.json()) as T
}

interface Accounting {
  balanced: boolean
  publishers: Array<{
    publisherId: string
    balanced: boolean
    edge: { received: number; accepted: number; rejected: number; duplicate: number }
    core: { accepted: number; billed: number; keptByReason: Record<string, number> }
  }>
}

async function realtimeImpressions(campaignId: string): Promise<number> {
  const from = new Date(Date.now() - 3600_000).toISOString()
  const to = new Date(Date.now() + 60_000).toISOString()
  const res = await fetch(`${core.url}/v1/metrics/realtime?campaignId=${campaignId}&from=${from}&to=${to}`, { headers: { authorization: `Bearer ${ADV_KEY}` } })
  expect(res.status).toBe(200)
  return ((await res.json()) as { totals: { impressions: number } }).totals.impressions
}

describe('hostile input through the whole path', () => {
  it('counts or keeps with a reason whatever the edge accepts, and blocks no partition', async () => {
    // Every known-nasty string in every field, as impression and as click, then random ones.
    const explicit = FIELDS.flatMap((field) => NASTY.map((value, k): Mutation => ({ field, value, click: k % 2 === 1 })))
    const mutations = [...explicit, ...fc.sample(mutation, { numRuns: 240, seed: 20261201 })]
    let edgeAccepted = 0
    const rejectedCodes = new Set<string>()
    for (let start = 0; start < mutations.length; start += 200) {
      const chunk = mutations.slice(start, start + 200)
      for (const kind of ['impressions', 'clicks'] as const) {
        const events = chunk.map((m, j) => ({ m, i: start + j })).filter(({ m }) => m.click === (kind === 'clicks'))
        if (events.length === 0) continue
        const answer = await post(`/v1/events/${kind}:batch`, `{"events":[${events.map(({ m, i }) => hostileJson(m, i)).join(',')}]}`)
        // Per-event verdicts only: one bad event never fails its neighbours or the request.
        expect(answer.status, JSON.stringify(answer.body).slice(0, 500)).toBe(202)
        expect(answer.body.results).toHaveLength(events.length)
        for (const r of answer.body.results) {
          expect(['accepted', 'rejected', 'duplicate']).toContain(r.status)
          if (r.status === 'rejected') {
            expect(r.code, JSON.stringify(r)).toBeTruthy()
            rejectedCodes.add(r.code!)
          }
        }
        edgeAccepted += answer.body.accepted
      }
    }
    // The beacon (public key, text/plain, the browser's own user agent header): the same fields,
    // plus agents with C1 controls and Latin-1 bytes in the header itself.
    const agents = [BROWSER_UA, 'Mozilla/5.0 \u0085\u009b[31m', 'Mozilla/5.0 (\u00ff\u00fe)', 'x'.repeat(2000)]
    for (let start = 0; start < explicit.length; start += 100) {
      const chunk = explicit.slice(start, start + 100)
      const body = `{"events":[${chunk.map((m, j) => hostileJson(m, 100_000 + start + j).replace(/^\{/, `{"type":${m.click ? '"click"' : '"impression"'},`)).join(',')}]}`
      const res = await send(`${edge.url}/v1/beacon?k=${PUBLIC_KEY}`, {
        method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': agents[(start / 100) % agents.length]! }, body,
      })
      expect(res.status).toBe(202)
      const answer = (await res.json()) as { results: { status: string; code?: string }[] }
      expect(answer.results).toHaveLength(chunk.length)
      for (const r of answer.results) {
        expect(['queued', 'rejected']).toContain(r.status)
        if (r.status === 'rejected') rejectedCodes.add(r.code!)
      }
    }
    // A public key may not send a click without a signed click token.
    expect(rejectedCodes.has('click_token_required')).toBe(true)

    // The generator is strong enough to be refused, and mild enough to be accepted at times.
    expect(rejectedCodes.has('invalid_event')).toBe(true)
    expect(edgeAccepted).toBeGreaterThan(0)

    // One ordinary impression per log partition, on a campaign the hostile events never use.
    const probes: ReturnType<typeof ordinary>[] = []
    for (let i = 0; probes.length < PARTITIONS; i++) {
      const p = ordinary(50_000 + i, 'cmp_demo_cpc')
      if (partitionFor(p.impressionId, PARTITIONS) === probes.length) probes.push(p)
    }
    const before = await realtimeImpressions('cmp_demo_cpc')
    const sent = await post('/v1/events/impressions:batch', JSON.stringify({ events: probes }))
    expect(sent.body.accepted).toBe(PARTITIONS)
    const counted = await eventually(() => realtimeImpressions('cmp_demo_cpc'), (n) => n >= before + PARTITIONS, 45_000)
    expect(counted - before, 'an ordinary event on every partition is counted').toBe(PARTITIONS)

    // The books balance: edge received = accepted + rejected + duplicate; edge accepted = core
    // accepted = billed + kept with a reason.
    const day = new Date().toISOString().slice(0, 10)
    const report = await eventually(() => adminGet<Accounting>(`/v1/reports/accounting?day=${day}`), (r) => r.balanced, 45_000)
    const pub = report.publishers.find((p) => p.publisherId === 'pub_demo')
    expect(pub, JSON.stringify(report)).toBeDefined()
    expect(pub!.edge.received).toBe(pub!.edge.accepted + pub!.edge.rejected + pub!.edge.duplicate)
    expect(pub!.core.accepted, JSON.stringify(pub)).toBe(pub!.edge.accepted)
    const kept = Object.values(pub!.core.keptByReason).reduce((a, b) => a + b, 0)
    expect(pub!.core.billed + kept).toBe(pub!.core.accepted)
    expect(report.balanced, JSON.stringify(report)).toBe(true)

    // Nothing is stalled: core says so.
    const health = await fetch(`${core.url}/healthz`)
    expect(health.status).toBe(200)
  })
})
