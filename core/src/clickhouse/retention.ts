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
  /** rollup_hour (the minute rollups summed per hour). @default 731 (two years) */
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

/** Table → [TTL time expression, retention key]. */
const TTL_TABLES: Array<[string, string, keyof RetentionConfig]> = [
  ['events_raw', 'toDateTime(ts)', 'rawDays'],
  ['rollup_minute', 'minute', 'minuteRollupDays'],
  ['rollup_ivt_minute', 'minute', 'minuteRollupDays'],
  ['edge_stats_minute', 'minute', 'minuteRollupDays'],
  ['rollup_hour', 'hour', 'hourlyRollupDays'],
  ['bad_rows', 'toDateTime(received_at)', 'badRowsDays'],
  ['ivt_decisions', 'toDateTime(ts)', 'ivtDecisionsDays'],
]

/**
 * The hourly rollup: rollup_minute summed per hour by a materialized view, so hourly totals outlive
 * the minute rows. Its target carries the dedup window too, so a deduplicated retry of a minute
 * insert does not reach it twice.
 */
export function hourlyRollupDdl(db: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${db}.rollup_hour (
      hour DateTime('UTC'),
      ${ROLLUP_CELLS},
      measured_impressions SimpleAggregateFunction(sum, Int64),
      viewable_impressions SimpleAggregateFunction(sum, Int64)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(hour)
    ORDER BY (campaign_id, hour, ad_id, publisher_id, geo, device)
    SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.rollup_hour_mv TO ${db}.rollup_hour AS
      SELECT toStartOfHour(minute) AS hour, campaign_id, ad_id, publisher_id, geo, device,
        sum(impressions) AS impressions, sum(clicks) AS clicks, sum(ivt_impressions) AS ivt_impressions,
        sum(ivt_clicks) AS ivt_clicks, sum(duplicates) AS duplicates, sum(orphan_clicks) AS orphan_clicks,
        sum(repeat_clicks) AS repeat_clicks, uniqMergeState(uniques) AS uniques, max(last_received_at) AS last_received_at,
        sum(measured_impressions) AS measured_impressions, sum(viewable_impressions) AS viewable_impressions
      FROM ${db}.rollup_minute
      GROUP BY hour, campaign_id, ad_id, publisher_id, geo, device`,
  ]
}

/** Rolls up the minute rows written before the hourly view existed (run once, when rollup_hour is new). */
export function hourlyBackfill(db: string): string {
  return `INSERT INTO ${db}.rollup_hour
    SELECT toStartOfHour(minute) AS hour, campaign_id, ad_id, publisher_id, geo, device,
      sum(impressions), sum(clicks), sum(ivt_impressions), sum(ivt_clicks), sum(duplicates), sum(orphan_clicks),
      sum(repeat_clicks), uniqMergeState(uniques), max(last_received_at), sum(measured_impressions), sum(viewable_impressions)
    FROM ${db}.rollup_minute
    GROUP BY hour, campaign_id, ad_id, publisher_id, geo, device`
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
