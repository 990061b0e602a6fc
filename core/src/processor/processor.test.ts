import { describe, expect, it } from 'vitest'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { migrate } from '../clickhouse/client.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { localLakeReader } from '../lake/restore.js'
import { createProcessor, type Processor } from './processor.js'
import { classifyDay } from '../billing/final-join.js'
import { useProcessorEnv } from '../testing/processor-env.js'
import { edgeStatsRecord, testEnvelope, toRecord, trafficMix } from '../testing/events.js'

const env = useProcessorEnv('processor')
let dbSeq = 0

const q = async <T>(query: string): Promise<T[]> => (await env.client.query({ query, format: 'JSONEachRow' })).json<T>()

async function untilCaughtUp(p: Processor, topic: string, total: number): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const parts = p.status().topics[topic] ?? {}
    const applied = Object.values(parts).reduce((a, s) => a + s.applied + 1, 0)
    if (applied >= total) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`processor did not catch up on ${topic}: ${JSON.stringify(p.status())}`)
}

async function setup(name: string, options: { iceberg?: boolean } = {}) {
  const db = `adc_proc_${dbSeq++}`
  await migrate(env.client, db)
  const topicSuffix = db
  const registry = createMetricsRegistry({ defaultMetrics: false })
  const p = createProcessor({
    log: env.log, clickhouse: env.client, database: db, stateDir: join(env.root, 'state', name), groupId: `g-${name}`,
    logger: pino({ level: 'silent' }), registry, maxBatchRecords: 500,
    ...(options.iceberg ? { icebergDir: join(env.lakeDir, db) } : {}),
  })
  return { db, p, registry, topicSuffix }
}

describe('processor on the embedded log and chDB', () => {
  it('counts each distinct event once, keeps duplicates and bad records with reasons, and commits', async () => {
    await env.log.ensureTopic('ad-events', 4)
    await env.log.ensureTopic('edge-stats', 2)
    const { db, p, registry } = await setup('basic', { iceberg: true })
    const { records, expected } = trafficMix(3000)
    const bad = [{ key: 'imp_bad', value: '{not json' }, { key: 'imp_bad2', value: JSON.stringify({ v: 2, type: 'impression' }) }, { key: 'imp_bad3', value: JSON.stringify({ v: 1, type: 'impression', key: 'x' }) }]
    const bot = toRecord(testEnvelope({ type: 'impression', n: 99_000_001, impressionId: 'imp_bot', ts: Date.UTC(2026, 10, 23, 12, 0, 0), ua: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' }))
    const all = [...records, ...bad, bot]
    await env.log.append('ad-events', all)
    await env.log.append('edge-stats', [edgeStatsRecord({ batchId: 'b1', minute: Date.UTC(2026, 10, 23, 12, 0), received: 10, accepted: 8, duplicate: 1, rejected: 1, rejectedByReason: { invalid_event: 1 } })])
    await p.start()
    await untilCaughtUp(p, 'ad-events', all.length)
    await untilCaughtUp(p, 'edge-stats', 1)
    // Lag is reported for owned partitions only: read it before stopping gives them up.
    const owned = await registry.metrics()
    await p.stop()

    const [r] = await q<Record<string, number>>(`SELECT sum(impressions) i, sum(clicks) c, sum(duplicates) d, sum(ivt_impressions) ivt, sum(orphan_clicks) o FROM ${db}.rollup_minute`)
    expect({ i: Number(r!.i), c: Number(r!.c), d: Number(r!.d), ivt: Number(r!.ivt), o: Number(r!.o) }).toEqual({ i: expected.impressions, c: expected.clicks, d: expected.duplicates, ivt: 1, o: 0 })
    const [raw] = await q<{ n: number }>(`SELECT sum(sign) n FROM ${db}.events_raw`)
    expect(Number(raw!.n)).toBe(records.length + 1)
    const badRows = await q<{ reason: string }>(`SELECT reason FROM ${db}.bad_rows ORDER BY reason`)
    expect(badRows.map((b) => b.reason)).toEqual(['bad_envelope', 'bad_envelope', 'unknown_version'])
    const [ivt] = await q<{ reasons: string[] }>(`SELECT reasons FROM ${db}.ivt_decisions`)
    expect(ivt!.reasons).toContain('givt_known_bot')
    const [es] = await q<{ accepted: number }>(`SELECT sum(accepted) accepted FROM ${db}.edge_stats_minute`)
    expect(Number(es!.accepted)).toBe(8)
    const committed = await env.log.committedOffsets('g-basic', 'ad-events')
    expect([...committed.values()].reduce((a, b) => a + b, 0)).toBe(all.length)
    const [lake] = await q<{ n: number }>(`SELECT count() n FROM ${localLakeReader(join(env.lakeDir, db))}`)
    expect(Number(lake!.n)).toBe(records.length + 1)
    const metrics = await registry.metrics()
    expect(metrics).toMatch(new RegExp(String.raw`adc_processor_events_total\{topic="ad-events",outcome="unbilled",reason="duplicate_delivery"\} ${expected.duplicates}`))
    expect(owned).toMatch(/adc_processor_lag_records\{topic="ad-events",partition="\d"\} 0/)
  })

  it('leaves no scratch directory behind once stopped: its sinks are closed with it', async () => {
    // The sinks make their scratch directories in the OS temp dir on their first write.
    const scratch = mkdtempSync(join(tmpdir(), 'adc-processor-scratch-'))
    const before = process.env.TMPDIR
    process.env.TMPDIR = scratch
    try {
      await env.log.ensureTopic('ad-events', 4)
      await env.log.ensureTopic('edge-stats', 2)
      await env.log.append('ad-events', trafficMix(40).records)
      const { p } = await setup('scratch', { iceberg: true })
      await p.start()
      const deadline = Date.now() + 30_000
      while (!['adc-chdb-insert-', 'adc-chdb-lake-'].every((prefix) => readdirSync(scratch).some((d) => d.startsWith(prefix)))) {
        if (Date.now() > deadline) throw new Error(`the sinks wrote no scratch files: ${readdirSync(scratch).join(', ')}`)
        await new Promise((r) => setTimeout(r, 20))
      }
      await p.stop()
      expect(readdirSync(scratch)).toEqual([])
    } finally {
      if (before === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = before
      rmSync(scratch, { recursive: true, force: true })
    }
  })

  it('joins a click that arrives before its impression, orphans one whose impression never comes, and corrects a late one', async () => {
    const { db, p } = await setup('join')
    const t = Date.UTC(2026, 10, 23, 14, 0, 0)
    const recs = [
      // click first, impression 10 s later: joined when the impression arrives
      toRecord(testEnvelope({ type: 'click', n: 50_000_001, impressionId: 'imp_j1', ts: t + 5_000, receivedAt: t + 5_050 })),
      toRecord(testEnvelope({ type: 'impression', n: 50_000_002, impressionId: 'imp_j1', ts: t, receivedAt: t + 10_000 })),
      // a click whose impression arrives only after the 30 min window passed: orphan, then corrected
      toRecord(testEnvelope({ type: 'click', n: 50_000_003, impressionId: 'imp_j2', ts: t + 6_000, receivedAt: t + 6_050 })),
      // a click that stays orphaned
      toRecord(testEnvelope({ type: 'click', n: 50_000_004, impressionId: 'imp_j3', ts: t + 7_000, receivedAt: t + 7_050 })),
      // something 40 minutes later moves the watermark past both windows
      toRecord(testEnvelope({ type: 'impression', n: 50_000_005, impressionId: 'imp_j4', ts: t + 40 * 60_000, receivedAt: t + 40 * 60_000 })),
      // the late impression of imp_j2 (event time before the click, received 41 min later)
      toRecord(testEnvelope({ type: 'impression', n: 50_000_006, impressionId: 'imp_j2', ts: t + 1_000, receivedAt: t + 41 * 60_000 })),
      // a second click on imp_j1: repeat
      toRecord(testEnvelope({ type: 'click', n: 50_000_007, impressionId: 'imp_j1', ts: t + 9_000, receivedAt: t + 41 * 60_000 })),
    ]
    // All in one partition so the order above is the processing order; the late records come in a
    // second append, after the first batch (whose watermark orphans imp_j2's click) was written.
    await env.log.ensureTopic('ad-events', 4)
    const waitApplied = async (): Promise<void> => {
      const end = (await env.log.endOffsets('ad-events')).get(3)!
      const deadline = Date.now() + 20_000
      while ((p.status().topics['ad-events']?.[3]?.applied ?? -1) + 1 < end && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    }
    await env.log.append('ad-events', recs.slice(0, 5).map((r) => ({ ...r, partition: 3 })))
    await p.start()
    await waitApplied()
    expect(p.status().topics['ad-events']?.[3]?.waitingClicks).toBe(0)
    await env.log.append('ad-events', recs.slice(5).map((r) => ({ ...r, partition: 3 })))
    await waitApplied()
    await p.stop()
    const rows = await q<Record<string, number>>(`SELECT sum(clicks) c, sum(orphan_clicks) o, sum(repeat_clicks) rep, sum(impressions) i FROM ${db}.rollup_minute WHERE minute >= toDateTime(${t / 1000}) AND minute < toDateTime(${t / 1000 + 3600})`)
    // imp_j1 click joined; imp_j2 orphan then corrected to a click; imp_j3 orphan
    expect({ c: Number(rows[0]!.c), o: Number(rows[0]!.o), rep: Number(rows[0]!.rep) }).toEqual({ c: 2, o: 1, rep: 1 })
    const corr = await q<{ sign: number; reason: string }>(`SELECT sign, reason FROM ${db}.events_raw WHERE impression_id = 'imp_j2' AND event_type = 'click' ORDER BY processed_at, reason, sign`)
    // First batch: written as join_pending at once, retracted when orphaned; then the late join.
    expect(corr).toEqual([
      { sign: -1, reason: 'join_pending' }, { sign: 1, reason: 'join_pending' }, { sign: 1, reason: 'orphan_click' },
      { sign: 1, reason: '' }, { sign: -1, reason: 'orphan_click' },
    ])
  })

  it('after a failed write, gathers the pending range from smaller batches and writes it again with the same tokens', async () => {
    const log2 = await createEmbeddedLog({ dir: join(env.root, 'log-gather'), logger: pino({ level: 'silent' }) })
    const db = `adc_proc_${dbSeq++}`
    await migrate(env.client, db)
    await log2.ensureTopic('ad-events', 1)
    await log2.ensureTopic('edge-stats', 1)
    const { records, expected } = trafficMix(400, { seed: 5 })
    await log2.append('ad-events', records)
    const base = { log: log2, clickhouse: env.client, database: db, stateDir: join(env.root, 'state', 'gather'), groupId: 'g-gather', logger: pino({ level: 'silent' }), registry: createMetricsRegistry({ defaultMetrics: false }), retryDelayMs: 500 }
    // First run: 250-record batches; the first batch's ClickHouse writes land, then the process fails
    // before its state commit, and stops.
    let failed = false
    let first: Processor | undefined
    first = createProcessor({
      ...base, maxBatchRecords: 250,
      crashPoint: (point) => {
        if (point === 'after_sink' && !failed) {
          failed = true
          void first!.stop()
          throw new Error('simulated failure after the sink write')
        }
      },
    })
    await first.start()
    while (!failed) await new Promise((r) => setTimeout(r, 10))
    await first.stop()
    const [mid] = await q<{ n: number }>(`SELECT count() n FROM ${db}.events_raw`)
    expect(Number(mid!.n)).toBeGreaterThan(0)
    // Second run with smaller batches: the pending range 0..249 arrives in pieces.
    const second = createProcessor({ ...base, maxBatchRecords: 100 })
    await second.start()
    const deadline = Date.now() + 20_000
    while ((second.status().topics['ad-events']?.[0]?.applied ?? -1) < records.length - 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await second.stop()
    const [r] = await q<Record<string, number>>(`SELECT sum(impressions) i, sum(clicks) c, sum(duplicates) d FROM ${db}.rollup_minute`)
    expect({ i: Number(r!.i), c: Number(r!.c), d: Number(r!.d) }).toEqual({ i: expected.impressions, c: expected.clicks, d: expected.duplicates })
    const [raw] = await q<{ n: number; rows: number }>(`SELECT sum(sign) n, count() rows FROM ${db}.events_raw`)
    expect({ n: Number(raw!.n), rows: Number(raw!.rows) }).toEqual({ n: records.length, rows: records.length })
    await log2.close()
  })

  it('keeps an event for a campaign nobody booked unbilled as unknown_campaign, in the stream and in the billing verdict', async () => {
    const log3 = await createEmbeddedLog({ dir: join(env.root, 'log-unknown'), logger: pino({ level: 'silent' }) })
    const db = `adc_proc_${dbSeq++}`
    await migrate(env.client, db)
    await log3.ensureTopic('ad-events', 1)
    await log3.ensureTopic('edge-stats', 1)
    const t = Date.UTC(2026, 10, 23, 15, 0, 0)
    const browser = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15'
    // As if injected straight into the log, past the edge: one booked impression, an unbooked impression and its click.
    const recs = [
      toRecord(testEnvelope({ type: 'impression', n: 60_000_001, impressionId: 'imp_u1', ts: t, ua: browser })),
      toRecord(testEnvelope({ type: 'impression', n: 60_000_002, impressionId: 'imp_u2', ts: t, campaignId: 'cmp_ghost', ua: browser })),
      toRecord(testEnvelope({ type: 'click', n: 60_000_003, impressionId: 'imp_u2', ts: t + 5_000, campaignId: 'cmp_ghost', ua: browser })),
    ]
    await log3.append('ad-events', recs)
    const booked = new Set(['cmp_demo_cpm', 'cmp_demo_cpc'])
    const p = createProcessor({
      log: log3, clickhouse: env.client, database: db, stateDir: join(env.root, 'state', 'unknown'), groupId: 'g-unknown',
      logger: pino({ level: 'silent' }), registry: createMetricsRegistry({ defaultMetrics: false }),
      isBookedCampaign: (id) => booked.has(id),
    })
    await p.start()
    const deadline = Date.now() + 20_000
    while ((p.status().topics['ad-events']?.[0]?.applied ?? -1) < recs.length - 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await p.stop()
    const raw = await q<{ campaign_id: string; event_type: string; billable: number; reason: string }>(
      `SELECT campaign_id, event_type, billable, toString(reason) reason FROM ${db}.events_raw ORDER BY campaign_id, event_type`)
    expect(raw).toEqual([
      { campaign_id: 'cmp_demo_cpm', event_type: 'impression', billable: 1, reason: '' },
      { campaign_id: 'cmp_ghost', event_type: 'click', billable: 0, reason: 'unknown_campaign' },
      { campaign_id: 'cmp_ghost', event_type: 'impression', billable: 0, reason: 'unknown_campaign' },
    ])
    const [r] = await q<Record<string, number>>(`SELECT sum(impressions) i, sum(clicks) c, sum(orphan_clicks) o FROM ${db}.rollup_minute WHERE campaign_id = 'cmp_ghost'`)
    expect({ i: Number(r!.i), c: Number(r!.c), o: Number(r!.o) }).toEqual({ i: 0, c: 0, o: 0 })
    // The billing job's recomputed verdict keeps them out too.
    const groups = await classifyDay(env.client, { database: db, day: '2026-11-23' })
    expect(groups.filter((g) => g.campaignId === 'cmp_ghost').map((g) => [g.eventType, g.verdict, g.events])).toEqual([
      ['click', 'unknown_campaign', 1],
      ['impression', 'unknown_campaign', 1],
    ])
    await log3.close()
  })
})
