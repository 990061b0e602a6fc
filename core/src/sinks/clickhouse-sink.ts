import { Readable } from 'node:stream'
import type { ClickHouseClient } from '@clickhouse/client'
import { sqlString } from '../clickhouse/client.js'
import { batchToken, type Sink, type SinkBatch } from './sink.js'

export interface ClickHouseSinkOptions {
  client: ClickHouseClient
  database: string
  /**
   * Put `insert_deduplication_token` in every INSERT. Only a negative control turns this off (and
   * then also the engine's own content-hash dedupe, `insert_deduplicate=0`), to prove the crash tests
   * catch a double count. @default true
   */
  dedupTokens?: boolean
  /** Called after each table's insert resolved (crash-test hook). */
  afterTable?(table: string): void
}

/** `2026-11-23 10:00:00.123`, the DateTime64(3) text ClickHouse parses with the basic input format. */
export function chTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23).replace('T', ' ')
}

const ROLLUP_STRUCTURE =
  'minute UInt32, campaign_id String, ad_id String, publisher_id String, geo String, device String, impressions Int64, clicks Int64, ivt_impressions Int64, ivt_clicks Int64, duplicates Int64, orphan_clicks Int64, repeat_clicks Int64, uniques Array(String), last_received_at Int64'

/**
 * Writes a batch to ClickHouse (chDB or a server, same SQL): events_raw, rollup_minute,
 * rollup_ivt_minute, ivt_decisions, bad_rows and edge_stats_minute. Every INSERT carries
 * `SETTINGS insert_deduplication_token='<topic>-<partition>-<min>-<max>-<table>'` in its SQL text
 * (never as a per-call setting: chDB keeps per-call settings as a session SET, which would dedupe
 * later unrelated inserts), and every target table has `non_replicated_deduplication_window`, so a
 * batch written again after a crash is dropped by the engine table by table.
 */
export function createClickHouseSink({ client, database, dedupTokens = true, afterTable }: ClickHouseSinkOptions): Sink {
  const settings = (batch: SinkBatch, table: string): string =>
    dedupTokens ? `SETTINGS insert_deduplication_token=${sqlString(batchToken(batch, table))}` : 'SETTINGS insert_deduplicate=0'

  async function insertRows(batch: SinkBatch, table: string, rows: unknown[]): Promise<void> {
    if (rows.length === 0) return
    let body = ''
    for (const r of rows) body += JSON.stringify(r) + '\n'
    const res = await client.exec({ query: `INSERT INTO ${database}.${table} ${settings(batch, table)} FORMAT JSONEachRow`, values: Readable.from([body]) })
    res.stream.resume()
    afterTable?.(table)
  }

  async function insertRollup(batch: SinkBatch): Promise<void> {
    if (batch.rollup.length === 0) return
    let data = ''
    for (const r of batch.rollup) data += JSON.stringify(r) + '\n'
    // uniqState must be computed by the engine, so the pre-aggregated rows travel inside the SQL
    // through the format() table function (input() does not reach chDB's in-process engine).
    await client.command({
      query: `INSERT INTO ${database}.rollup_minute (minute, campaign_id, ad_id, publisher_id, geo, device, impressions, clicks, ivt_impressions, ivt_clicks, duplicates, orphan_clicks, repeat_clicks, uniques, last_received_at)
        ${settings(batch, 'rollup_minute')}
        SELECT toDateTime(minute, 'UTC'), campaign_id, ad_id, publisher_id, geo, device, sum(impressions), sum(clicks), sum(ivt_impressions), sum(ivt_clicks),
          sum(duplicates), sum(orphan_clicks), sum(repeat_clicks), uniqArrayState(uniques), max(fromUnixTimestamp64Milli(last_received_at, 'UTC'))
        FROM format(JSONEachRow, ${sqlString(ROLLUP_STRUCTURE)}, ${sqlString(data)})
        GROUP BY minute, campaign_id, ad_id, publisher_id, geo, device`,
    })
    afterTable?.('rollup_minute')
  }

  return {
    name: 'clickhouse',
    async write(batch) {
      await insertRows(batch, 'events_raw', batch.events.map((r) => ({ ...r, ts: chTime(r.ts), received_at: chTime(r.received_at), processed_at: chTime(r.processed_at) })))
      await insertRollup(batch)
      await insertRows(batch, 'rollup_ivt_minute', batch.rollupIvt)
      await insertRows(batch, 'ivt_decisions', batch.ivtDecisions.map((r) => ({ ...r, ts: chTime(r.ts), decided_at: chTime(r.decided_at) })))
      await insertRows(batch, 'bad_rows', batch.badRows.map((r) => ({ ...r, received_at: chTime(r.received_at) })))
      await insertRows(batch, 'edge_stats_minute', batch.edgeStats)
    },
  }
}
