import { MAX_FUTURE_SKEW_MS, checkClock } from '@adc/schemas'
import { describe, expect, it } from 'vitest'
import { createClient } from './client.js'
import { MAX_CLOCK_OFFSET_MS, createEdgeClock } from './clock.js'
import { memoryStorage } from './storage/storage.js'
import type { FetchLike } from './transport.js'
import type { Dropped } from './types.js'

const MIN = 60_000
const imp = (i: number) => ({ adId: 'ad_1', campaignId: 'cmp_1', requestId: `req_${i}`, impressionId: `imp_${i}` })

/**
 * An edge with its own clock that judges each event's ts as the real edge does (schemas'
 * checkClock: at most 5 minutes ahead, at most 24 h old) and dates its answers.
 */
function datedEdge(edgeNow: () => number, latencyMs = 0, advance?: (ms: number) => void) {
  const sent: Array<{ url: string; events: Array<Record<string, unknown>> }> = []
  const fetch: FetchLike = async (url, init) => {
    const events = (JSON.parse(init.body) as { events: Array<Record<string, unknown>> }).events
    sent.push({ url, events })
    advance?.(latencyMs / 2)
    const results = events.map((e, index) => (checkClock(e.ts as number, edgeNow()) === 'ok'
      ? { index, eventId: e.eventId, status: 'accepted' }
      : { index, eventId: e.eventId, status: 'rejected', code: 'clock_skew' }))
    const date = new Date(edgeNow()).toUTCString()
    advance?.(latencyMs / 2)
    return new Response(JSON.stringify({ results }), { status: 202, headers: { date } })
  }
  return { sent, fetch }
}

describe('the edge clock learnt from Date headers', () => {
  const edgeAt = (ms: number) => new Date(ms).toUTCString()

  it('never corrects a clock that is right, whatever the round trip and the second the Date rounds to', () => {
    for (const [sent, rtt] of [[1_800_000_000_000, 0], [1_800_000_000_999, 40], [1_800_000_000_500, 3_000]] as const) {
      const clock = createEdgeClock(() => sent)
      // The edge wrote its Date somewhere within the round trip, on the same (right) clock.
      expect(clock.observe(edgeAt(sent + rtt / 2), sent, sent + rtt)).toBe(true)
      expect(clock.confirmed()).toBe(0)
    }
  })

  it('corrects a clock 10 minutes fast to within the round trip plus the Date\'s second', () => {
    const device = 1_800_000_000_000
    const clock = createEdgeClock(() => device)
    const edge = device - 10 * MIN + 123
    clock.observe(edgeAt(edge + 200), device, device + 400)
    const offset = clock.confirmed()!
    expect(Math.abs(device + 200 + offset - (edge + 200))).toBeLessThanOrEqual(1_400)
    // A later answer consistent with the offset held does not move it.
    clock.observe(edgeAt(edge + 5_000), device + 4_900, device + 5_100)
    expect(clock.confirmed()).toBe(offset)
  })

  it('believes no offset beyond its bound, and no answer without a usable Date', () => {
    const device = 1_800_000_000_000
    const clock = createEdgeClock(() => device)
    expect(clock.observe(edgeAt(device + MAX_CLOCK_OFFSET_MS + 10 * MIN), device, device)).toBe(true)
    expect(clock.confirmed()).toBeUndefined()
    expect(clock.observe(null, device, device)).toBe(false)
    expect(clock.observe('yesterday-ish', device, device)).toBe(false)
    expect(clock.offset()).toBe(0)
  })

  it('a jump of the device clock unconfirms the offset; a clock set back takes the offset with it', () => {
    let wall = 1_800_000_000_000
    let mono = 0
    const clock = createEdgeClock(() => wall, () => mono)
    clock.observe(edgeAt(wall - 10 * MIN), wall, wall)
    const fast = clock.confirmed()!
    expect(fast).toBeLessThan(-9 * MIN)
    wall += 5_000
    mono += 5_000
    expect(clock.confirmed()).toBe(fast)
    // Someone sets the clock right: 10 minutes back, while the monotonic clock ran 1 s.
    wall -= 10 * MIN - 1_000
    mono += 1_000
    expect(clock.confirmed()).toBeUndefined()
    expect(Math.abs(clock.offset())).toBeLessThan(2_000)
    // A jump forward may be a sleep: the guess stays until an answer says otherwise.
    wall += 3_600_000
    clock.deviceNow()
    expect(Math.abs(clock.offset())).toBeLessThan(2_000)
  })
})

describe('event timestamps on the edge\'s clock', () => {
  /** `monotonic`: the client gets a monotonic clock (real time, which the edge's clock follows). */
  function setup(deviceAhead: number, extra: { monotonic?: boolean; latencyMs?: number } = {}) {
    let edge = 1_800_000_000_000
    const device = () => edge + deviceAhead
    const fake = datedEdge(() => edge, extra.latencyMs ?? 0, (ms) => { edge += ms })
    const dropped: Dropped[] = []
    const storage = memoryStorage(null)
    let skew = 0
    const client = createClient({
      endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { serverKey: 'sk_1' }, fetch: fake.fetch, storage,
      flushAt: 1000, flushIntervalMs: 0, backoff: { baseMs: 1000, maxMs: 60_000 }, now: () => device() + skew, random: () => 0.5,
      onRejected: (d) => dropped.push(d), lifecycle: [], ...(extra.monotonic ? { monotonicNow: () => edge } : {}),
    })
    return {
      client, fake, dropped, storage,
      edgeNow: () => edge,
      advance: (ms: number) => { edge += ms },
      /** Sets the device clock by `ms` (the user or the network changes it). */
      jump: (ms: number) => { skew += ms },
    }
  }

  async function drain(s: ReturnType<typeof setup>) {
    for (let i = 0; i < 5 && s.client.stats().queued > 0; i++) {
      const r = await s.client.flush()
      if (r.retryInMs !== undefined) s.advance(r.retryInMs)
    }
  }

  it('a device 10 minutes fast: events queued before the offset was known are corrected and delivered, later ones are right at once', async () => {
    const s = setup(10 * MIN, { latencyMs: 300 })
    const id1 = await s.client.impression(imp(1))
    await s.client.click({ ...imp(1), clickId: 'clk_1' })
    await drain(s)
    expect(s.dropped).toEqual([])
    expect(s.client.stats()).toMatchObject({ delivered: 2, queued: 0 })
    // The impressions' first request was refused as clock_skew and taught the offset; the same event
    // went again with its ts on the edge's clock; the click, queued meanwhile, was corrected before
    // its first send.
    const imps = s.fake.sent.filter((r) => r.url.endsWith('/impressions:batch'))
    const clicks = s.fake.sent.filter((r) => r.url.endsWith('/clicks:batch'))
    expect(imps).toHaveLength(2)
    expect(imps[1]!.events[0]!.eventId).toBe(id1)
    expect(clicks).toHaveLength(1)
    expect(clicks[0]!.events[0]!.ts as number).toBeLessThanOrEqual(s.edgeNow() + MAX_FUTURE_SKEW_MS)

    const before = s.fake.sent.length
    await s.client.impression(imp(2))
    expect(await s.client.flush()).toMatchObject({ delivered: 1, dropped: 0 })
    expect(s.fake.sent).toHaveLength(before + 1)
    expect(Math.abs((s.fake.sent.at(-1)!.events[0]!.ts as number) - s.edgeNow())).toBeLessThan(2_000)
  })

  it('a queue stored before a restart is corrected by the offset the next run learns', async () => {
    let edge = 1_800_000_000_000
    const device = () => edge + 30 * MIN
    const storage = memoryStorage(null)
    const offline = createClient({
      endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { serverKey: 'sk_1' }, storage, flushAt: 1000, flushIntervalMs: 0, lifecycle: [],
      now: device, fetch: async () => { throw new TypeError('offline') },
    })
    await offline.impression(imp(1))
    await offline.impression(imp(2))
    await offline.shutdown()
    const fake = datedEdge(() => edge, 0, (ms) => { edge += ms })
    const dropped: Dropped[] = []
    const online = createClient({
      endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { serverKey: 'sk_1' }, storage, flushAt: 1000, flushIntervalMs: 0, lifecycle: [],
      now: device, fetch: fake.fetch, onRejected: (d) => dropped.push(d), random: () => 0.5, backoff: { baseMs: 1000 },
    })
    for (let i = 0; i < 3 && (i === 0 || online.stats().queued > 0); i++) {
      const r = await online.flush()
      if (r.retryInMs) edge += r.retryInMs
    }
    expect(dropped).toEqual([])
    expect(online.stats()).toMatchObject({ delivered: 2, queued: 0 })
    expect(fake.sent.at(-1)!.events.map((e) => Math.abs((e.ts as number) - edge) < 5_000)).toEqual([true, true])
  })

  it('never makes a right clock worse: ts stay as stamped and resends are byte-identical', async () => {
    const s = setup(0, { latencyMs: 800 })
    await s.client.impression(imp(1))
    const stamped = s.edgeNow()
    await drain(s)
    await s.client.impression(imp(2))
    const stamped2 = s.edgeNow()
    await drain(s)
    expect(s.fake.sent.map((r) => r.events[0]!.ts)).toEqual([stamped, stamped2])
  })

  it('a refusal for clock_skew is not retried again without a new offset: the event is dropped as the edge said', async () => {
    // The app gave its own ts, far ahead: the client never rewrites an app's ts.
    const s = setup(0)
    await s.client.impression({ ...imp(1), ts: s.edgeNow() + 60 * MIN })
    await drain(s)
    expect(s.dropped.map((d) => d.code)).toEqual(['clock_skew'])
    expect(s.fake.sent).toHaveLength(1)
  })

  it('a device clock set right (10 minutes back) after the offset was learnt: new events are not moved 10 minutes into the past', async () => {
    const s = setup(10 * MIN, { monotonic: true })
    await s.client.impression(imp(1))
    await drain(s)
    expect(s.client.stats().delivered).toBe(1)
    s.jump(-10 * MIN)
    await s.client.impression(imp(2))
    const made = s.edgeNow()
    await drain(s)
    expect(s.dropped).toEqual([])
    expect(s.fake.sent.at(-1)!.events[0]!.impressionId).toBe('imp_2')
    expect(Math.abs((s.fake.sent.at(-1)!.events[0]!.ts as number) - made)).toBeLessThan(2_000)
  })

  it('a slow device clock set right (forward) while events wait: the one refused is corrected by the refusal\'s Date', async () => {
    const s = setup(-20 * MIN, { monotonic: true })
    await s.client.impression(imp(1))
    await drain(s)
    // The clock is put right: 20 minutes forward (a sleep would look the same, so the offset stays a guess).
    s.jump(20 * MIN)
    await s.client.impression(imp(2))
    const made = s.edgeNow()
    await drain(s)
    expect(s.dropped).toEqual([])
    expect(s.client.stats()).toMatchObject({ delivered: 2, queued: 0 })
    const last = s.fake.sent.at(-1)!.events[0]!
    expect(last.impressionId).toBe('imp_2')
    expect(Math.abs((last.ts as number) - made)).toBeLessThan(2_000)
  })
})
