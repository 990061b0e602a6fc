/**
 * ClickHouse tables, written once for chDB (embedded) and a ClickHouse server alike.
 * Columns are added, never renamed or dropped. Every table a processor insert reaches carries
 * `non_replicated_deduplication_window`, so a retried insert with the same
 * `insert_deduplication_token` (topic-partition-minOffset-maxOffset) is dropped by the engine.
 * For a replicated cluster, swap `MergeTree` for `ReplicatedMergeTree('/clickhouse/tables/{shard}/<table>', '{replica}')`
 * (and the same for the Aggregating variant); replicated tables deduplicate by default
 * (`replicated_deduplication_window`).
 */
export const DEDUP_WINDOW = 100_000

const dedup = `non_replicated_deduplication_window = ${DEDUP_WINDOW}`

/**
 * A rollup row after its time column: the cell (campaign, ad, publisher, geo, device) and its
 * counters, the same for the minute and the hourly rollup (retention.ts).
 */
export const ROLLUP_CELLS = `campaign_id String,
      ad_id String,
      publisher_id String,
      geo LowCardinality(String),
      device LowCardinality(String),
      impressions SimpleAggregateFunction(sum, Int64),
      clicks SimpleAggregateFunction(sum, Int64),
      ivt_impressions SimpleAggregateFunction(sum, Int64),
      ivt_clicks SimpleAggregateFunction(sum, Int64),
      duplicates SimpleAggregateFunction(sum, Int64),
      orphan_clicks SimpleAggregateFunction(sum, Int64),
      repeat_clicks SimpleAggregateFunction(sum, Int64),
      uniques AggregateFunction(uniq, String),
      last_received_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))`

export function ddl(db: string): string[] {
  return [
    `CREATE DATABASE IF NOT EXISTS ${db}`,
    // One row per accepted event as the processor judged it, billable or kept with a reason.
    `CREATE TABLE IF NOT EXISTS ${db}.events_raw (
      event_key String,
      event_type LowCardinality(String),
      event_id String,
      impression_id String,
      click_id String,
      campaign_id String,
      ad_id String,
      publisher_id String,
      request_id String,
      ts DateTime64(3, 'UTC'),
      received_at DateTime64(3, 'UTC'),
      channel LowCardinality(String),
      device LowCardinality(String),
      geo LowCardinality(String),
      placement String,
      user_key String,
      ua String,
      ip_prefix String,
      ip_hash String,
      edge_source LowCardinality(String),
      edge_dedupe LowCardinality(String),
      prefetch UInt8,
      billable UInt8,
      reason LowCardinality(String),
      ivt_score Float32,
      ivt_reasons Array(LowCardinality(String)),
      model_version LowCardinality(String),
      joined UInt8,
      log_partition UInt32,
      log_offset UInt64,
      processed_at DateTime64(3, 'UTC')
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMMDD(ts)
    ORDER BY (campaign_id, ts, event_key)
    SETTINGS ${dedup}`,
    // Minute rollups with signed counts: a correction (orphan joined, verdict changed) is a delta row.
    `CREATE TABLE IF NOT EXISTS ${db}.rollup_minute (
      minute DateTime('UTC'),
      ${ROLLUP_CELLS}
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMMDD(minute)
    ORDER BY (campaign_id, minute, ad_id, publisher_id, geo, device)
    SETTINGS ${dedup}`,
    // IVT counts per reason per minute (signed), for breakdowns.
    `CREATE TABLE IF NOT EXISTS ${db}.rollup_ivt_minute (
      minute DateTime('UTC'),
      campaign_id String,
      publisher_id String,
      event_type LowCardinality(String),
      reason LowCardinality(String),
      events SimpleAggregateFunction(sum, Int64)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMMDD(minute)
    ORDER BY (campaign_id, minute, publisher_id, event_type, reason)
    SETTINGS ${dedup}`,
    `CREATE TABLE IF NOT EXISTS ${db}.ivt_decisions (
      event_key String,
      event_type LowCardinality(String),
      campaign_id String,
      publisher_id String,
      ts DateTime64(3, 'UTC'),
      score Float32,
      reasons Array(LowCardinality(String)),
      model_version LowCardinality(String),
      quarantined UInt8,
      decided_at DateTime64(3, 'UTC')
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMMDD(ts)
    ORDER BY (campaign_id, ts, event_key)
    SETTINGS ${dedup}`,
    // Log records that could not be decoded: enough to fix and replay (Snowplow-style bad rows).
    `CREATE TABLE IF NOT EXISTS ${db}.bad_rows (
      received_at DateTime64(3, 'UTC'),
      log_topic String,
      log_partition UInt32,
      log_offset UInt64,
      reason LowCardinality(String),
      step LowCardinality(String),
      details String,
      payload String,
      processor_artifact LowCardinality(String),
      processor_version LowCardinality(String)
    ) ENGINE = MergeTree
    ORDER BY (received_at, log_partition, log_offset)
    SETTINGS ${dedup}`,
    // What the edge saw per publisher and minute (received = accepted + rejected + duplicate).
    `CREATE TABLE IF NOT EXISTS ${db}.edge_stats_minute (
      minute DateTime('UTC'),
      publisher_id String,
      received SimpleAggregateFunction(sum, Int64),
      accepted SimpleAggregateFunction(sum, Int64),
      rejected SimpleAggregateFunction(sum, Int64),
      duplicate SimpleAggregateFunction(sum, Int64),
      rejected_by_reason SimpleAggregateFunction(sumMap, Map(String, Int64))
    ) ENGINE = AggregatingMergeTree
    ORDER BY (publisher_id, minute)
    SETTINGS ${dedup}`,
    // Added by the processor: +1 for a verdict, -1 for a retraction (an orphan click joined late).
    // Count events as sum(sign), not count().
    `ALTER TABLE ${db}.events_raw ADD COLUMN IF NOT EXISTS sign Int8 DEFAULT 1`,
    // Viewability per impression: `viewable` (0 when not viewable or unmeasured) and how it was
    // measured (`mrc_50_1s` from the tag, `client` from SDKs, '' when unmeasured).
    `ALTER TABLE ${db}.events_raw ADD COLUMN IF NOT EXISTS viewable UInt8 DEFAULT 0, ADD COLUMN IF NOT EXISTS view_method LowCardinality(String) DEFAULT ''`,
    // What the IVT agent rules need beyond the stored agent (ivt/rules.ts scoreEnvelope), so a model
    // run over stored rows (billing/reprocess.ts) judges them as the stream did: the event said
    // `consent: false`, and a sender-side `uaHash` stood in for the agent (either way `ua` is '').
    `ALTER TABLE ${db}.events_raw ADD COLUMN IF NOT EXISTS no_consent UInt8 DEFAULT 0, ADD COLUMN IF NOT EXISTS ua_hashed UInt8 DEFAULT 0`,
    // Of the billable impressions: how many were measured, and how many of those were viewable.
    `ALTER TABLE ${db}.rollup_minute ADD COLUMN IF NOT EXISTS measured_impressions SimpleAggregateFunction(sum, Int64) DEFAULT 0, ADD COLUMN IF NOT EXISTS viewable_impressions SimpleAggregateFunction(sum, Int64) DEFAULT 0`,
    // Billing snapshots: each run writes a new version; an old version is never edited.
    `CREATE TABLE IF NOT EXISTS ${db}.billing_snapshots (
      day Date,
      version UInt32,
      status LowCardinality(String),
      job_id String,
      advertiser_id String,
      campaign_id String,
      publisher_id String,
      pricing_model LowCardinality(String),
      price_micros Int64,
      impressions Int64,
      clicks Int64,
      ivt_impressions Int64,
      ivt_clicks Int64,
      ivt_by_reason Map(String, Int64),
      duplicates Int64,
      orphan_clicks Int64,
      spend_micros Int64,
      model_version LowCardinality(String),
      created_at DateTime64(3, 'UTC')
    ) ENGINE = MergeTree
    ORDER BY (day, version, advertiser_id, campaign_id, publisher_id)`,
    `ALTER TABLE ${db}.billing_snapshots ADD COLUMN IF NOT EXISTS measured_impressions Int64 DEFAULT 0, ADD COLUMN IF NOT EXISTS viewable_impressions Int64 DEFAULT 0`,
    // Set only when a bad row's payload was not well-formed text (a lone UTF-16 surrogate): the
    // original as a JSON string literal (lossless through JSON.parse), while `payload` holds it with
    // U+FFFD in place of each lone surrogate, so writing a bad row can never fail on its content.
    `ALTER TABLE ${db}.bad_rows ADD COLUMN IF NOT EXISTS payload_original String DEFAULT ''`,
    // Privacy requests (core/src/privacy/erase.ts): one audit row per erasure, kept forever. Holds the
    // SHA-256 of the identifier, never the identifier; `external` names raw stores erased elsewhere
    // (Iceberg) and whether that is done or pending.
    `CREATE TABLE IF NOT EXISTS ${db}.privacy_requests (
      request_id String,
      requested_at DateTime64(3, 'UTC'),
      requested_by String,
      publisher_id String,
      subject LowCardinality(String),
      subject_sha256 String,
      deleted Map(String, Int64),
      external Map(String, String)
    ) ENGINE = MergeTree
    ORDER BY (requested_at, request_id)`,
    // A follow-up row of a request (privacy/retry.ts): the raw stores a later retry finished, naming
    // the request it completes; the request's own row is never changed.
    `ALTER TABLE ${db}.privacy_requests ADD COLUMN IF NOT EXISTS follow_up_of String DEFAULT ''`,
    // Side-effect-free twins of the processor's tables (ENGINE = Null parses and discards): the
    // processor probes rows there to find which records the engine refuses (clickhouse-sink.ts).
    // A column added to a table above is added to its twin too.
    ...SINK_TABLES.map((t) => `CREATE TABLE IF NOT EXISTS ${db}.${probeTable(t)} AS ${db}.${t} ENGINE = Null`),
    `ALTER TABLE ${db}.${probeTable('bad_rows')} ADD COLUMN IF NOT EXISTS payload_original String DEFAULT ''`,
    `ALTER TABLE ${db}.${probeTable('events_raw')} ADD COLUMN IF NOT EXISTS sign Int8 DEFAULT 1, ADD COLUMN IF NOT EXISTS viewable UInt8 DEFAULT 0, ADD COLUMN IF NOT EXISTS view_method LowCardinality(String) DEFAULT ''`,
    `ALTER TABLE ${db}.${probeTable('events_raw')} ADD COLUMN IF NOT EXISTS no_consent UInt8 DEFAULT 0, ADD COLUMN IF NOT EXISTS ua_hashed UInt8 DEFAULT 0`,
    `ALTER TABLE ${db}.${probeTable('rollup_minute')} ADD COLUMN IF NOT EXISTS measured_impressions SimpleAggregateFunction(sum, Int64) DEFAULT 0, ADD COLUMN IF NOT EXISTS viewable_impressions SimpleAggregateFunction(sum, Int64) DEFAULT 0`,
    // Why a version exists and what it covers: the version it supersedes, the receive-time cut-off,
    // and whether the day was complete (watermark past its end plus the lateness horizon).
    `ALTER TABLE ${db}.billing_snapshots ADD COLUMN IF NOT EXISTS reason String DEFAULT '', ADD COLUMN IF NOT EXISTS supersedes UInt32 DEFAULT 0,
      ADD COLUMN IF NOT EXISTS received_before DateTime64(3, 'UTC') DEFAULT 0, ADD COLUMN IF NOT EXISTS complete UInt8 DEFAULT 0`,
  ]
}

/** The tables the processor's ClickHouse sink writes, in its write order. */
export const SINK_TABLES = ['events_raw', 'rollup_minute', 'rollup_ivt_minute', 'ivt_decisions', 'bad_rows', 'edge_stats_minute'] as const
export type SinkTable = (typeof SINK_TABLES)[number]

/** The Null-engine twin of a table. */
export function probeTable(table: string): string {
  return `${table}_probe`
}
