import { DEDUP_WINDOW, ROLLUP_CELLS } from './ddl.js'

/**
 * How long ClickHouse keeps each table's rows, in days after the row's event time; 0 keeps them
 * forever. Billing snapshots are never expired (they are what was invoiced). Raw events are what a
 * re-close or a reprocess reads: a day older than `rawDays` can no longer be recomputed from
 * ClickHouse (the Iceberg raw table is the longer archive).
 */
export interface RetentionConfig {
  /** events_raw. @default 90 */
  rawDays: number
  /** rollup_minute, rollup_ivt_minute, edge_stats_minute. @default 35 */
  minuteRollupDays: number
  /** rollup_hour, rollup_ivt_hour, edge_stats_hour (the minute rollups summed per hour). @default 731 (two years) */
  hourlyRollupDays: number
  /** bad_rows. @default 90 */
  badRowsDays: number
  /** ivt_decisions. @default 90 */
  ivtDecisionsDays: number
}

export const DEFAULT_RETENTION: RetentionConfig = {
  rawDays: 90,
  minuteRollupDays: 35,
  hourlyRollupDays: 731,
  badRowsDays: 90,
  ivtDecisionsDays: 90,
}

/**
 * The engine's clock decides expiry and may run ahead of this process's: a row is read as surely
 * kept only while it is at least this far from its TTL.
 */
export const TTL_MARGIN_MS = 3_600_000

/**
 * The earliest time whose rows a table kept `days` days surely still holds at `now` (its TTL less
 * TTL_MARGIN_MS); -Infinity when the table keeps its rows forever (0 days).
 */
export function keptFrom(now: number, days: number): number {
  return days > 0 ? now - days * 86_400_000 + TTL_MARGIN_MS : -Infinity
}

/** Table → [TTL time expression, retention key]. */
const TTL_TABLES: Array<[string, string, keyof RetentionConfig]> = [
  ['events_raw', 'toDateTime(ts)', 'rawDays'],
  ['rollup_minute', 'minute', 'minuteRollupDays'],
  ['rollup_ivt_minute', 'minute', 'minuteRollupDays'],
  ['edge_stats_minute', 'minute', 'minuteRollupDays'],
  ['rollup_hour', 'hour', 'hourlyRollupDays'],
  ['rollup_ivt_hour', 'hour', 'hourlyRollupDays'],
  ['edge_stats_hour', 'hour', 'hourlyRollupDays'],
  ['bad_rows', 'toDateTime(received_at)', 'badRowsDays'],
  ['ivt_decisions', 'toDateTime(ts)', 'ivtDecisionsDays'],
]

/** An hourly rollup: a minute table summed per hour by a materialized view, kept `hourlyRollupDays`. */
export interface HourlyRollup {
  table: string
  create: string
  view: string
  /** Rolls up the minute rows written before the view existed (run once, when the table is new). */
  backfill: string
}

/**
 * The hourly rollups, so hourly totals outlive the minute rows: `rollup_hour` (the metrics),
 * `rollup_ivt_hour` (IVT by reason), `edge_stats_hour` (what the edge saw, for the accounting
 * report). Each target carries the dedup window too, so a deduplicated retry of a minute insert
 * does not reach it twice. The read side chooses between them in api/rollup-plan.ts.
 */
export function hourlyRollups(db: string): HourlyRollup[] {
  const settings = `SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW}`
  const rollup = (table: string, columns: string, order: string, source: string, select: string, keys: string): HourlyRollup => {
    const query = `SELECT toStartOfHour(minute) AS hour, ${select} FROM ${db}.${source} GROUP BY hour, ${keys}`
    return {
      table,
      create: `CREATE TABLE IF NOT EXISTS ${db}.${table} (
      hour DateTime('UTC'),
      ${columns}
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(hour)
    ORDER BY (${order})
    ${settings}`,
      view: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${table}_mv TO ${db}.${table} AS ${query}`,
      backfill: `INSERT INTO ${db}.${table} ${query}`,
    }
  }
  return [
    rollup(
      'rollup_hour',
      `${ROLLUP_CELLS},
      measured_impressions SimpleAggregateFunction(sum, Int64),
      viewable_impressions SimpleAggregateFunction(sum, Int64)`,
      'campaign_id, hour, ad_id, publisher_id, geo, device',
      'rollup_minute',
      `campaign_id, ad_id, publisher_id, geo, device,
        sum(impressions) AS impressions, sum(clicks) AS clicks, sum(ivt_impressions) AS ivt_impressions,
        sum(ivt_clicks) AS ivt_clicks, sum(duplicates) AS duplicates, sum(orphan_clicks) AS orphan_clicks,
        sum(repeat_clicks) AS repeat_clicks, uniqMergeState(uniques) AS uniques, max(last_received_at) AS last_received_at,
        sum(measured_impressions) AS measured_impressions, sum(viewable_impressions) AS viewable_impressions`,
      'campaign_id, ad_id, publisher_id, geo, device',
    ),
    rollup(
      'rollup_ivt_hour',
      `campaign_id String,
      publisher_id String,
      event_type LowCardinality(String),
      reason LowCardinality(String),
      events SimpleAggregateFunction(sum, Int64)`,
      'campaign_id, hour, publisher_id, event_type, reason',
      'rollup_ivt_minute',
      'campaign_id, publisher_id, event_type, reason, sum(events) AS events',
      'campaign_id, publisher_id, event_type, reason',
    ),
    rollup(
      'edge_stats_hour',
      `publisher_id String,
      received SimpleAggregateFunction(sum, Int64),
      accepted SimpleAggregateFunction(sum, Int64),
      rejected SimpleAggregateFunction(sum, Int64),
      duplicate SimpleAggregateFunction(sum, Int64),
      rejected_by_reason SimpleAggregateFunction(sumMap, Map(String, Int64))`,
      'publisher_id, hour',
      'edge_stats_minute',
      `publisher_id, sum(received) AS received, sum(accepted) AS accepted, sum(rejected) AS rejected,
        sum(duplicate) AS duplicate, sumMap(rejected_by_reason) AS rejected_by_reason`,
      'publisher_id',
    ),
  ]
}

/**
 * The TTL statements for `config`, for tables that exist (created by ddl.ts). `current` maps a table
 * to its `engine_full` from system.tables: a table whose TTL already matches gets no statement, so
 * a start does not re-materialize TTLs (MODIFY TTL rewrites every part of a big table).
 * Whole day partitions are dropped instead of rewritten (`ttl_only_drop_parts`) where a table is
 * partitioned by day.
 */
export function retentionStatements(db: string, config: RetentionConfig, current: Map<string, string>): string[] {
  const out: string[] = []
  for (const [table, expr, key] of TTL_TABLES) {
    const engine = current.get(table)
    if (engine === undefined) continue
    const days = config[key]
    if (!Number.isInteger(days) || days < 0) throw new RangeError(`retention ${key} must be a whole number of days >= 0, got ${days}`)
    const has = /\bTTL\b/.test(engine)
    if (days === 0) {
      if (has) out.push(`ALTER TABLE ${db}.${table} REMOVE TTL`)
      continue
    }
    if (has && engine.includes(`TTL ${expr} + toIntervalDay(${days})`)) continue
    if (/PARTITION BY toYYYYMMDD/.test(engine) && !/ttl_only_drop_parts = 1/.test(engine)) {
      out.push(`ALTER TABLE ${db}.${table} MODIFY SETTING ttl_only_drop_parts = 1`)
    }
    out.push(`ALTER TABLE ${db}.${table} MODIFY TTL ${expr} + INTERVAL ${days} DAY`)
  }
  return out
}
