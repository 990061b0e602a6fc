import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { partitionFor, type EnvelopeInput } from '@adc/schemas'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { classifyDay, recordVerdicts } from '../billing/final-join.js'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { scoreEnvelope, QUARANTINE_ABOVE } from '../ivt/rules.js'
import { BROWSER_UA, testEnvelope, toRecord } from '../testing/events.js'
import { PROPERTY_RUNS_DEFAULT, referenceVerdicts, type ModelEvent } from './reference-model.js'
import { runStream } from '../testing/stream-run.js'

/**
 * One rule set, two engines: on generated traffic around a UTC day (midnight on both sides, clicks
 * inside and outside the web and app windows, clicks before their impressions, late arrivals up to
 * the edge's 24 h, re-deliveries (some carrying another ts than the first sighting), repeat clicks and duplicate impressions across midnight, bots and
 * fast clicks, two publishers sending the same impression ids, link scanners and prefetches on the click redirect), the processor's verdicts (embedded log → processor → chDB) and the billing job's
 * final join over the rows it wrote must both equal the reference model, record by record.
 */
const DAY = '2026-11-20'
const D = Date.parse(`${DAY}T00:00:00Z`)
const MIN = 60_000
const HOUR = 60 * MIN
const PARTITIONS = 2
const BOT_UA = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
const RUNS = Number(process.env.RULES_PROPERTY_RUNS ?? PROPERTY_RUNS_DEFAULT)

const eventArb = fc.record({
  type: fc.constantFrom<'impression' | 'click'>('impression', 'click', 'click'),
  imp: fc.constantFrom('i0', 'i1', 'i2', 'i3', 'i4', 'i5'),
  // Impression ids are the clients': another publisher may send the same ids (by chance, or to hit
  // a rival's impressions). Each publisher's impression is its own.
  pub: fc.constantFrom('pub_a', 'pub_a', 'pub_b'),
  channel: fc.constantFrom<'web' | 'app'>('web', 'web', 'app'),
  ts: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: D - 2 * HOUR, max: D + 2 * HOUR }) },
    { weight: 3, arbitrary: fc.integer({ min: D + 22 * HOUR, max: D + 26 * HOUR }) },
    { weight: 1, arbitrary: fc.integer({ min: D - 26 * HOUR, max: D + 50 * HOUR }) },
  ),
  // A click placed relative to its impression: just before, fast, inside or outside a window.
  near: fc.option(
    fc.constantFrom(-2 * MIN, -30_000, 400, 20_000, 29 * MIN, 31 * MIN, 3 * HOUR, 23 * HOUR, 25 * HOUR),
    { nil: undefined, freq: 2 },
  ),
  delay: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 2 * MIN }) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 * HOUR }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 24 * HOUR }) },
  ),
  bot: fc.boolean().map((b) => b && Math.random() < 0.3),
  // A click the edge marked as a HEAD, prefetch or link scanner on the redirect (before or after the person's).
  prefetch: fc.constantFrom(false, false, false, true),
  retries: fc.array(fc.integer({ min: 0, max: 10 * MIN }), { maxLength: 2 }),
  // A client resend of the same event id may carry another ts (an hour or more apart): same delivery key.
  resendShift: fc.constantFrom(0, 0, 0, -65 * MIN, -3 * HOUR),
  // The log may trail the edge clock a little (spool retries): within LOG_DELAY_MARGIN_MS.
  jitter: fc.integer({ min: 0, max: 20 * MIN }),
})

interface Rec {
  env: EnvelopeInput
  arrival: number
}

type Drawn = typeof eventArb extends fc.Arbitrary<infer T> ? T : never

function build(drawn: Drawn[], n0: number): Rec[] {
  const firstImpTs = new Map<string, number>()
  const scope = (d: Drawn): string => `${d.pub}/${d.imp}`
  for (const d of drawn) if (d.type === 'impression' && !firstImpTs.has(scope(d))) firstImpTs.set(scope(d), d.ts)
  const out: Rec[] = []
  drawn.forEach((d, i) => {
    // A click near an impression: mostly its own publisher's, sometimes (pub_b) the same id of the other's.
    const near = firstImpTs.get(scope(d)) ?? firstImpTs.get(`pub_a/${d.imp}`)
    const base = d.type === 'click' && d.near !== undefined && near !== undefined ? near + d.near : d.ts
    const receivedAt = base + d.delay
    const env = testEnvelope({
      type: d.type, n: n0 + i, publisherId: d.pub, impressionId: d.imp, ts: base, receivedAt, channel: d.channel,
      campaignId: d.type === 'click' ? 'cmp_c' : 'cmp_i', ua: d.bot ? BOT_UA : BROWSER_UA, ipPrefix: `203.0.${i % 250}.0/24`,
      prefetch: d.type === 'click' && d.prefetch,
    })
    out.push({ env, arrival: receivedAt + d.jitter })
    d.retries.forEach((gap: number, k: number) => {
      const again = { ...env, receivedAt: receivedAt + gap, event: { ...env.event, ts: Number(env.event.ts) + d.resendShift } } as EnvelopeInput
      out.push({ env: again, arrival: receivedAt + gap + d.jitter + k + 1 })
    })
  })
  return out.sort((a, b) => a.arrival - b.arrival)
}

/** Sentinels far past the day on every partition: they move each watermark past every window. */
function sentinels(n0: number): EnvelopeInput[] {
  const out: EnvelopeInput[] = []
  const covered = new Set<number>()
  for (let i = 0; covered.size < PARTITIONS; i++) {
    const id = `sentinel_${i}`
    const p = partitionFor(id, PARTITIONS)
    if (covered.has(p)) continue
    covered.add(p)
    out.push(testEnvelope({ type: 'impression', n: n0 + i, impressionId: id, ts: D + 6 * 24 * HOUR, receivedAt: D + 6 * 24 * HOUR, campaignId: 'cmp_sentinel' }))
  }
  return out
}

const ivtOracle = (envs: Map<string, EnvelopeInput>) => (e: ModelEvent, impressionTs: number | undefined): string => {
  const env = envs.get(e.id)!
  const { score, reasons } = scoreEnvelope(env as never, { impressionTs, ipPrefixPerMinute: 1, userKeyPerMinute: 0 })
  return score > QUARANTINE_ABOVE ? reasons[0]! : ''
}

async function streamVerdicts(ch: ClickHouseClient, db: string): Promise<Map<string, string>> {
  const rs = await ch.query({
    query: `SELECT log_partition, log_offset, event_key, reason, sum(sign) AS n FROM ${db}.events_raw
      WHERE ts >= {s:DateTime64(3, 'UTC')} AND ts < {e:DateTime64(3, 'UTC')}
      GROUP BY log_partition, log_offset, event_key, reason HAVING n > 0`,
    query_params: { s: D, e: D + 24 * HOUR },
    format: 'JSONEachRow',
  })
  const out = new Map<string, string>()
  for (const r of await rs.json<Record<string, unknown>>()) {
    const id = `${r.log_partition}:${r.log_offset}:${r.event_key}`
    if (out.has(id) || Number(r.n) !== 1) throw new Error(`record ${id} has more than one current verdict`)
    out.set(id, String(r.reason) || 'billable')
  }
  return out
}

const countBy = (m: Map<string, string>) => {
  const out: Record<string, number> = {}
  for (const v of m.values()) out[v] = (out[v] ?? 0) + 1
  return out
}

let root: string
let ch: ClickHouseClient
let cases = 0

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'adc-rules-'))
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
})
afterAll(async () => {
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
  console.log(`two-engine property: ${cases} generated days`)
})

describe('one rule set, two engines (property)', () => {
  it('stream verdicts = final-join verdicts = reference model, record by record, on days that cross midnight', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 30 }), async (drawn) => {
        const n = ++cases
        const db = `adc_rules_${n}`
        await migrate(ch, db)
        const recs = build(drawn, n * 1000)
        const all = [...recs.map((r) => r.env), ...sentinels(n * 1000 + 900)]
        await runStream({ ch, database: db, dir: join(root, `case-${n}`), records: all.map(toRecord), partitions: PARTITIONS })

        // Log positions as the embedded log assigns them: per partition, in append order.
        const next = new Array<number>(PARTITIONS).fill(0)
        const events: ModelEvent[] = []
        const envs = new Map<string, EnvelopeInput>()
        for (const env of all) {
          const p = partitionFor(env.event.impressionId, PARTITIONS)
          const id = `${p}:${next[p]!++}:${env.key}`
          envs.set(id, env)
          events.push({ id, key: env.key, type: env.type, publisherId: env.event.publisherId, impressionId: env.event.impressionId, prefetch: env.edge.prefetch === true, ts: Number(env.event.ts), receivedAt: env.receivedAt, channel: env.event.channel ?? 'web' })
        }
        const model = referenceVerdicts(events, ivtOracle(envs))
        const inDay = new Map([...model].filter(([id]) => { const t = Number(envs.get(id)!.event.ts); return t >= D && t < D + 24 * HOUR }))

        // The billing job's grouped output (what snapshots are built from) against the model's counts.
        const groups = await classifyDay(ch, { database: db, day: DAY })
        const grouped: Record<string, number> = {}
        for (const g of groups) grouped[g.verdict] = (grouped[g.verdict] ?? 0) + g.events
        expect(grouped).toEqual(countBy(inDay))

        const stream = await streamVerdicts(ch, db)
        const final = await recordVerdicts(ch, { database: db, day: DAY })
        expect(Object.fromEntries(stream)).toEqual(Object.fromEntries(inDay))
        expect(Object.fromEntries(final)).toEqual(Object.fromEntries(inDay))
        await ch.command({ query: `DROP DATABASE ${db}` })
      }),
      { numRuns: RUNS },
    )
  }, 600_000)
})
