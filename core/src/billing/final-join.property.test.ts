import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { insertRows, openTestClickHouse, rawEvent } from '../api/test-support.js'
import { DUPLICATE_VERDICTS, IVT_REASONS, classifyDay } from './final-join.js'
import { buildLines } from './snapshots.js'

/**
 * The final join against a reference model written from the rules in final-join.ts, on random days
 * of events (replayed rows, duplicates, IVT, clicks whose impression is on the previous day or
 * nowhere, re-deliveries sharing the event key, signed orphan corrections), and the conservation law
 * billing rests on: every accepted delivery of the day lands in exactly one bucket (billed, IVT,
 * duplicate or orphan).
 */
const DAY = '2026-11-20'
const D = Date.parse(`${DAY}T00:00:00Z`)
const STORED_REASONS = ['', '', '', 'duplicate_delivery', 'givt_known_bot', 'sivt_fast_click', 'orphan_click', 'repeat_click', 'duplicate_impression']

interface Ev {
  key: string
  type: 'impression' | 'click'
  imp: string
  campaign: string
  ts: number
  reason: string
}

const evArb = fc.record({
  type: fc.constantFrom<'impression' | 'click'>('impression', 'click'),
  imp: fc.constantFrom('i0', 'i1', 'i2', 'i3', 'i4'),
  campaign: fc.constantFrom('cA', 'cB'),
  // Mostly inside the day, some on the previous day (late impressions), a few on the next day.
  ts: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: D, max: D + 86_399_999 }) },
    { weight: 2, arbitrary: fc.integer({ min: D - 86_400_000, max: D - 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: D + 86_400_000, max: D + 90_000_000 }) },
  ),
  reason: fc.constantFrom(...STORED_REASONS),
  replayed: fc.boolean(),
  // Later deliveries of the same event (same key), kept by the processor as duplicate_delivery.
  redeliveries: fc.nat({ max: 2 }),
  // A stream orphan click later joined: -1 orphan_click and +1 joined rows.
  corrected: fc.boolean(),
})

/** Live verdicts: one per delivery, corrections applied. */
function reference(events: Ev[]): Map<string, Map<string, number>> {
  const all = events
  const inDay = all.filter((e) => e.ts >= D && e.ts < D + 86_400_000)
  const impressionsSeen = new Set(all.filter((e) => e.type === 'impression' && e.ts >= D - 86_400_000 && e.ts < D + 86_400_000).map((e) => e.imp))
  const firsts = new Map<string, Ev>()
  for (const e of [...inDay].sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : 1))) {
    if (e.reason === 'duplicate_delivery') continue
    const k = `${e.type}|${e.imp}`
    if (!firsts.has(k)) firsts.set(k, e)
  }
  const out = new Map<string, Map<string, number>>()
  for (const e of inDay) {
    let verdict: string
    if (e.reason === 'duplicate_delivery') verdict = 'duplicate_delivery'
    else if (firsts.get(`${e.type}|${e.imp}`) !== e) verdict = e.type === 'impression' ? 'duplicate_impression' : 'repeat_click'
    else if (IVT_REASONS.includes(e.reason)) verdict = e.reason
    else if (e.type === 'click' && !impressionsSeen.has(e.imp)) verdict = 'orphan_click'
    else verdict = 'billable'
    const k = `${e.campaign}|${e.type}`
    const m = out.get(k) ?? new Map<string, number>()
    m.set(verdict, (m.get(verdict) ?? 0) + 1)
    out.set(k, m)
  }
  return out
}

let ch: Awaited<ReturnType<typeof openTestClickHouse>>

beforeAll(async () => {
  ch = await openTestClickHouse('adc_prop')
})
afterAll(async () => {
  await ch?.close()
})

describe('final join (property)', () => {
  it('matches the reference model and conserves every event of the day', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(evArb, { minLength: 1, maxLength: 25 }), async (drawn) => {
        const db = 'adc_prop'
        await ch.client.command({ query: `TRUNCATE TABLE ${db}.events_raw` })
        const live: Ev[] = []
        const rows = drawn.flatMap((d, i) => {
          const e: Ev = { key: `k${String(i).padStart(2, '0')}`, type: d.type, imp: d.imp, campaign: d.campaign, ts: d.ts, reason: d.reason }
          const base = { key: e.key, type: e.type, imp: e.imp, campaign: e.campaign, ts: e.ts, offset: i * 10 }
          const out = [rawEvent({ ...base, reason: e.reason || undefined })]
          if (d.replayed) out.push(rawEvent({ ...base, reason: e.reason || undefined, processed: e.ts + 99_000 }))
          if (d.corrected && e.type === 'click' && e.reason === 'orphan_click') {
            out.push(rawEvent({ ...base, reason: 'orphan_click', sign: -1, processed: e.ts + 60_000 }))
            out.push(rawEvent({ ...base, processed: e.ts + 60_000 }))
            live.push({ ...e, reason: '' })
          } else {
            live.push(e)
          }
          for (let r = 1; r <= d.redeliveries; r++) {
            out.push(rawEvent({ ...base, offset: i * 10 + r, reason: 'duplicate_delivery', processed: e.ts + r * 1000 }))
            live.push({ ...e, reason: 'duplicate_delivery' })
          }
          return out
        })
        await insertRows(ch.client, `${db}.events_raw`, rows)
        const groups = await classifyDay(ch.client, { database: db, day: DAY })
        const got = new Map<string, Map<string, number>>()
        for (const g of groups) {
          const k = `${g.campaignId}|${g.eventType}`
          const m = got.get(k) ?? new Map<string, number>()
          m.set(g.verdict, (m.get(g.verdict) ?? 0) + g.events)
          got.set(k, m)
        }
        expect(got).toEqual(reference(live))

        const lines = buildLines(groups, { getCampaign: (id) => ({ id, advertiserId: 'adv_t', name: id, pricing: { model: 'cpm', priceMicros: 0 }, createdAt: 0 }) })
        const bucketed = lines.reduce((s, l) => s + l.impressions + l.clicks + l.ivtImpressions + l.ivtClicks + l.duplicates + l.orphanClicks, 0)
        // Every delivery of the day (originals and re-deliveries, corrections applied) lands in one bucket.
        expect(bucketed).toBe(live.filter((e) => e.ts >= D && e.ts < D + 86_400_000).length)
        for (const g of groups) expect(g.verdict === 'billable' || DUPLICATE_VERDICTS.has(g.verdict) || g.verdict === 'orphan_click' || IVT_REASONS.includes(g.verdict)).toBe(true)
      }),
      { numRuns: 30 },
    )
  })
})
