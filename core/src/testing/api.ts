/**
 * Test support for the read side: an embedded ClickHouse with the migrations applied, and fixture rows
 * (events_raw, a billed day, hourly rollups) inserted the way the processor writes them.
 * Imported by tests and benchmarks only.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClickHouseClient } from '@clickhouse/client'
import { createClickHouse, migrate } from '../clickhouse/client.js'

/**
 * A real chDB engine for read-side tests, in a temporary directory (one per test process:
 * chDB allows one data directory per process), with core's pinned settings and tables.
 * With `ADC_TEST_CLICKHOUSE_URL` (the pinned-ClickHouse test project sets it) the same tests talk to
 * that server over HTTP instead.
 */
export async function openTestClickHouse(database = 'adc'): Promise<{ client: ClickHouseClient; database: string; dir: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'adc-read-ch-'))
  const url = process.env.ADC_TEST_CLICKHOUSE_URL
  const client = url ? createClickHouse({ url, dataDir: dir }) : createClickHouse({ dataDir: dir })
  await migrate(client, database)
  return {
    client,
    database,
    dir,
    async close() {
      await client.close().catch(() => undefined)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Inserts rows as JSONEachRow; tests fill only the columns they care about (others default). */
export async function insertRows(client: ClickHouseClient, table: string, rows: Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return
  await client.insert({ table, values: rows, format: 'JSONEachRow' })
}

/** A raw event row with sensible defaults; `ts`/`received` are epoch ms. */
export function rawEvent(e: {
  key: string
  type?: 'impression' | 'click'
  imp: string
  campaign: string
  publisher?: string
  ts: number
  received?: number
  billable?: boolean
  reason?: string
  ivtScore?: number
  ivtReasons?: string[]
  geo?: string
  device?: string
  /** The processor's signed corrections: -1 retracts the verdict the row repeats. */
  sign?: 1 | -1
  processed?: number
  /** Log position of the record the row came from (a re-delivery is another record). */
  offset?: number
  /** Viewability as the processor stores it: unmeasured when `viewMethod` is absent. */
  viewable?: boolean
  viewMethod?: string
  /** The end user's agent, as a model reprocessing the row reads it. @default a desktop Chrome */
  ua?: string
}): Record<string, unknown> {
  const t = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '')
  return {
    event_key: e.key,
    event_type: e.type ?? 'impression',
    event_id: e.key,
    impression_id: e.imp,
    click_id: e.type === 'click' ? `clk_${e.key}` : '',
    campaign_id: e.campaign,
    ad_id: 'ad_1',
    publisher_id: e.publisher ?? 'pub_demo',
    request_id: `req_${e.imp}`,
    ts: t(e.ts),
    received_at: t(e.received ?? e.ts + 1000),
    channel: 'web',
    ua: e.ua ?? 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    device: e.device ?? 'desktop',
    geo: e.geo ?? 'US',
    billable: (e.billable ?? !e.reason) ? 1 : 0,
    reason: e.reason ?? '',
    ivt_score: e.ivtScore ?? 0,
    ivt_reasons: e.ivtReasons ?? [],
    model_version: 'ivt-1',
    joined: e.type === 'click' && e.reason !== 'orphan_click' ? 1 : 0,
    log_offset: e.offset ?? 0,
    processed_at: t(e.processed ?? (e.received ?? e.ts + 1000) + 500),
    ...(e.sign !== undefined ? { sign: e.sign } : {}),
    ...(e.viewMethod !== undefined ? { viewable: e.viewable ? 1 : 0, view_method: e.viewMethod } : {}),
  }
}

export const FIXTURE_DAY = '2026-11-20'
const D = Date.parse(`${FIXTURE_DAY}T00:00:00Z`)
const H = 3_600_000

/**
 * One day of raw events with every case the final join must get right (see billing tests):
 * cmp_demo_cpm: 3 billable impressions, one physical replay of a row, one re-delivery of a billed
 * event, one duplicate impression, one known bot, one duplicate delivery. cmp_demo_cpc: an impression late on the previous day whose
 * click the stream called an orphan, a true orphan, a repeat click, and one plain joined click.
 */
export function fixtureDay(): Record<string, unknown>[] {
  return [
    rawEvent({ key: 'i1', imp: 'imp1', campaign: 'cmp_demo_cpm', ts: D + 1 * H, geo: 'US', device: 'mobile' }),
    rawEvent({ key: 'i1', imp: 'imp1', campaign: 'cmp_demo_cpm', ts: D + 1 * H, geo: 'US', device: 'mobile' }),
    rawEvent({ key: 'i2', imp: 'imp2', campaign: 'cmp_demo_cpm', ts: D + 2 * H, geo: 'DE' }),
    // The same event sent again by its client a minute later and accepted again by the edge (same
    // key, another log record, its own receive time): kept as a duplicate, i2 stays billed.
    rawEvent({ key: 'i2', imp: 'imp2', campaign: 'cmp_demo_cpm', ts: D + 2 * H, received: D + 2 * H + 61_000, geo: 'DE', reason: 'duplicate_delivery', offset: 7 }),
    rawEvent({ key: 'i3', imp: 'imp3', campaign: 'cmp_demo_cpm', ts: D + 3 * H, geo: 'DE' }),
    rawEvent({ key: 'i3b', imp: 'imp3', campaign: 'cmp_demo_cpm', ts: D + 3 * H + 5, reason: 'duplicate_impression' }),
    rawEvent({ key: 'i4', imp: 'imp4', campaign: 'cmp_demo_cpm', ts: D + 4 * H, reason: 'givt_known_bot', ivtScore: 1, ivtReasons: ['givt_known_bot'], ua: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' }),
    // A later re-delivery of i1 (another log record with its key).
    rawEvent({ key: 'i1', imp: 'imp1', campaign: 'cmp_demo_cpm', ts: D + 5 * H, reason: 'duplicate_delivery', offset: 5 }),
    rawEvent({ key: 'j1', imp: 'impj1', campaign: 'cmp_demo_cpc', ts: D - 60_000, received: D + 2 * H }),
    rawEvent({ key: 'c1', type: 'click', imp: 'impj1', campaign: 'cmp_demo_cpc', ts: D + 60_000, reason: 'orphan_click' }),
    rawEvent({ key: 'c2', type: 'click', imp: 'impj2', campaign: 'cmp_demo_cpc', ts: D + 2 * H, reason: 'orphan_click' }),
    rawEvent({ key: 'c3', type: 'click', imp: 'impj1', campaign: 'cmp_demo_cpc', ts: D + 3 * H, reason: 'repeat_click' }),
    rawEvent({ key: 'j3', imp: 'impj3', campaign: 'cmp_demo_cpc', ts: D + 6 * H }),
    // 2 s after its impression: a person for ivt-2026.11.1 (1 s), a fast click for ivt-2026.12.1 (3 s).
    rawEvent({ key: 'c4', type: 'click', imp: 'impj3', campaign: 'cmp_demo_cpc', ts: D + 6 * H + 2_000 }),
  ]
}

export interface RollupFixture {
  minute: number
  campaign: string
  ad?: string
  publisher?: string
  geo?: string
  device?: string
  impressions?: number
  clicks?: number
  ivtImpressions?: number
  ivtClicks?: number
  users?: string[]
  lastReceived?: number
  measured?: number
  viewable?: number
}

/** Inserts minute rollup rows, building the HLL state in the engine (`uniqState`). */
export async function insertRollup(client: ClickHouseClient, database: string, rows: RollupFixture[]): Promise<void> {
  for (const r of rows) {
    await client.command({
      query: `INSERT INTO ${database}.rollup_minute
        (minute, campaign_id, ad_id, publisher_id, geo, device, impressions, clicks, ivt_impressions, ivt_clicks,
         duplicates, orphan_clicks, repeat_clicks, measured_impressions, viewable_impressions, uniques, last_received_at)
        SELECT toDateTime({m:UInt32}, 'UTC'), {c:String}, {ad:String}, {pub:String}, {geo:String}, {dev:String},
          {i:Int64}, {k:Int64}, {ii:Int64}, {ik:Int64}, 0, 0, 0, {mi:Int64}, {vi:Int64}, uniqStateIf(u, u != ''), fromUnixTimestamp64Milli({lr:Int64}, 'UTC')
        FROM (SELECT arrayJoin(if(empty({users:Array(String)}), [''], {users:Array(String)})) AS u)`,
      query_params: {
        m: Math.floor(r.minute / 1000),
        c: r.campaign,
        ad: r.ad ?? 'ad_1',
        pub: r.publisher ?? 'pub_demo',
        geo: r.geo ?? 'US',
        dev: r.device ?? 'desktop',
        i: r.impressions ?? 0,
        k: r.clicks ?? 0,
        ii: r.ivtImpressions ?? 0,
        ik: r.ivtClicks ?? 0,
        users: r.users ?? [],
        lr: r.lastReceived ?? r.minute + 30_000,
        mi: r.measured ?? 0,
        vi: r.viewable ?? 0,
      },
    })
  }
}
