/**
 * The Sink port's contract suite: every adapter (ClickHouse embedded or server, Iceberg) runs the
 * same tests, reading back through a probe.
 * Imported by tests and benchmarks only.
 */
import { describe, expect, it } from 'vitest'
import { emptyBatch, type EventRow, type Sink, type SinkBatch } from '../sinks/sink.js'

/** Reads back what a sink holds for one test topic, so the same suite runs against every adapter. */
export interface SinkProbe {
  /** Sum of event signs per (billable, reason) for `topic`'s rows in partition `partition`. */
  eventTotals(partition: number): Promise<{ events: number; billable: number }>
  /** Rollup totals (absent for sinks without rollups). */
  rollupTotals?(campaignId: string): Promise<{ impressions: number; clicks: number; orphan_clicks: number; uniques: number }>
}

export interface SinkContractOptions {
  name: string
  newSink(): Promise<{ sink: Sink; probe: SinkProbe }>
}

let seq = 0
export function eventRow(partition: number, offset: number, overrides: Partial<EventRow> = {}): EventRow {
  const ts = Date.UTC(2026, 10, 23, 10, 0, 0) + offset * 1000
  return {
    event_key: `k${partition}-${offset}-${seq++}`, event_type: 'impression', event_id: `e${offset}`, impression_id: `imp${offset}`, click_id: '',
    campaign_id: 'cmp_contract', ad_id: 'ad1', publisher_id: 'pub1', request_id: 'r1', ts, received_at: ts + 10, channel: 'web', device: 'desktop',
    geo: 'US', placement: '', user_key: `u${offset % 7}`, ua: 'Mozilla/5.0', ip_prefix: '203.0.113.0/24', ip_hash: 'h', edge_source: 'batch',
    edge_dedupe: 'new', prefetch: 0, billable: 1, reason: '', ivt_score: 0, ivt_reasons: [], model_version: 'm1', joined: 0, log_partition: partition,
    log_offset: offset, processed_at: ts + 20, sign: 1, viewable: 0, view_method: '', no_consent: 0, ua_hashed: 0, ...overrides,
  }
}

export function batchOf(topic: string, partition: number, min: number, max: number, campaignId = 'cmp_contract'): SinkBatch {
  const b = emptyBatch(topic, partition, min, max)
  for (let o = min; o <= max; o++) b.events.push(eventRow(partition, o, { campaign_id: campaignId }))
  const minute = Math.floor(Date.UTC(2026, 10, 23, 10, 0, 0) / 1000)
  b.rollup.push({ minute, campaign_id: campaignId, ad_id: 'ad1', publisher_id: 'pub1', geo: 'US', device: 'desktop', impressions: max - min + 1, clicks: 0, ivt_impressions: 0, ivt_clicks: 0, duplicates: 0, orphan_clicks: 0, repeat_clicks: 0, measured_impressions: 0, viewable_impressions: 0, uniques: b.events.map((e) => e.user_key), last_received_at: Date.UTC(2026, 10, 23, 10, 0, 1) })
  return b
}

/**
 * The behaviour every sink adapter promises: a batch written twice (a replay after a crash) counts
 * once; different ranges both count; signed rows cancel.
 */
export function runSinkContract({ name, newSink }: SinkContractOptions): void {
  describe(`sink contract: ${name}`, () => {
    it('a batch written again after a crash counts once', async () => {
      const { sink, probe } = await newSink()
      const b = batchOf('contract-a', 1, 100, 149)
      await sink.write(b, { recovering: false })
      await sink.write(batchOf('contract-a', 1, 100, 149), { recovering: true })
      expect(await probe.eventTotals(1)).toEqual({ events: 50, billable: 50 })
      if (probe.rollupTotals) expect((await probe.rollupTotals('cmp_contract')).impressions).toBe(50)
    })

    it('two different ranges both count, and a retraction row cancels its verdict', async () => {
      const { sink, probe } = await newSink()
      await sink.write(batchOf('contract-b', 2, 0, 9, 'cmp_b'), { recovering: false })
      const next = batchOf('contract-b', 2, 10, 19, 'cmp_b')
      next.events.push(eventRow(2, 5, { sign: -1, billable: 1, campaign_id: 'cmp_b' }))
      next.rollup[0]!.impressions -= 1
      await sink.write(next, { recovering: false })
      expect((await probe.eventTotals(2)).events).toBe(19)
      if (probe.rollupTotals) {
        const t = await probe.rollupTotals('cmp_b')
        expect(t.impressions).toBe(19)
        expect(t.uniques).toBe(7)
      }
    })

    it('a probe stores nothing, and rows the engine cannot take are refused as content, leaving nothing stored', async () => {
      const { sink, probe } = await newSink()
      await sink.probe?.(batchOf('contract-c', 3, 0, 9))
      const refused = batchOf('contract-c', 3, 10, 19)
      refused.events[4] = { ...refused.events[4]!, ts: 6e15 } // past year 9999: no DateTime64
      await expect(sink.probe?.(refused)).rejects.toMatchObject({ failure: { kind: 'content' } })
      await expect(sink.write(refused, { recovering: false })).rejects.toMatchObject({ failure: { kind: 'content' } })
      expect((await probe.eventTotals(3)).events).toBe(0)
      if (probe.rollupTotals) expect((await probe.rollupTotals('cmp_contract')).impressions).toBe(0)
    })
  })
}

/** The probe for a ClickHouse database holding ddl.ts's tables, on chDB or a server alike. */
export function clickhouseProbe(q: <T>(query: string) => Promise<T[]>, db: string): SinkProbe {
  return {
    async eventTotals(partition) {
      const [r] = await q<{ events: number; billable: number }>(`SELECT sum(sign) AS events, sumIf(sign, billable = 1) AS billable FROM ${db}.events_raw WHERE log_partition = ${partition}`)
      return { events: Number(r!.events), billable: Number(r!.billable) }
    },
    async rollupTotals(campaignId) {
      const [r] = await q<{ impressions: number; clicks: number; orphan_clicks: number; uniques: number }>(`SELECT sum(impressions) AS impressions, sum(clicks) AS clicks, sum(orphan_clicks) AS orphan_clicks, uniqMerge(uniques) AS uniques FROM ${db}.rollup_minute WHERE campaign_id = '${campaignId}'`)
      return { impressions: Number(r!.impressions), clicks: Number(r!.clicks), orphan_clicks: Number(r!.orphan_clicks), uniques: Number(r!.uniques) }
    },
  }
}
