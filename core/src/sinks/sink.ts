/**
 * The sink port: writes one processed batch (one log partition, one offset range). A sink must be
 * idempotent per batch: the processor writes a batch again after a crash or a failed write, with the
 * same rows and the same `token(table)`, and the second write must not count twice.
 * `write` resolves only once the batch is durable in the sink; the processor commits log offsets
 * only after every sink resolved.
 */
export interface Sink {
  readonly name: string
  write(batch: SinkBatch, options: SinkWriteOptions): Promise<void>
  /**
   * Sends the batch's rows where they are parsed exactly as `write` would but stored nowhere (e.g.
   * ClickHouse `ENGINE = Null` twins): rejects as `write` would for the rows' content (a
   * SinkWriteError of kind `content`), writes nothing. The processor probes sub-batches to find the
   * records a sink refuses. A sink without it cannot refuse content.
   */
  probe?(batch: SinkBatch): Promise<void>
  close?(): Promise<void>
}

export interface SinkWriteOptions {
  /** True when this range may have been (partly) written before (a replay after a crash or failure). */
  recovering: boolean
}

export interface SinkBatch {
  topic: string
  partition: number
  minOffset: number
  maxOffset: number
  /** Row objects: kept only when a sink needs them (Iceberg off chDB); see `eventsRowBinary`. */
  events: EventRow[]
  /**
   * The events_raw rows as RowBinary bytes (clickhouse-sink.ts `writeEventRowBinary`), when the
   * builder wrote each row as it was built (sinks/batch-builder.ts): then no row object outlives its
   * event, and `events` is empty unless row objects were asked for too. Unset: built from `events`.
   * `refusal`: a value the engine could not store (row-binary-writer.ts), so the insert is refused.
   * `tsRange`: the rows' earliest and latest `ts` (epoch ms), when the builder knows them.
   */
  eventsRowBinary?: { bytes: Buffer; refusal: string | undefined; tsRange?: [number, number] }
  rollup: RollupRow[]
  rollupIvt: RollupIvtRow[]
  ivtDecisions: IvtDecisionRow[]
  badRows: BadRowRow[]
  edgeStats: EdgeStatsRow[]
}

/** The per-table insert deduplication token: `<topic>-<partition>-<minOffset>-<maxOffset>-<table>`. */
export function batchToken(batch: Pick<SinkBatch, 'topic' | 'partition' | 'minOffset' | 'maxOffset'>, table: string): string {
  return `${batch.topic}-${batch.partition}-${batch.minOffset}-${batch.maxOffset}-${table}`
}

/** events_raw (and the Iceberg raw table); times as epoch ms. */
export interface EventRow {
  event_key: string
  event_type: 'impression' | 'click'
  event_id: string
  impression_id: string
  click_id: string
  campaign_id: string
  ad_id: string
  publisher_id: string
  request_id: string
  ts: number
  received_at: number
  channel: string
  device: string
  geo: string
  placement: string
  user_key: string
  ua: string
  ip_prefix: string
  ip_hash: string
  edge_source: string
  edge_dedupe: string
  prefetch: 0 | 1
  billable: 0 | 1
  reason: string
  ivt_score: number
  ivt_reasons: string[]
  model_version: string
  joined: 0 | 1
  log_partition: number
  log_offset: number
  processed_at: number
  /** +1 for a verdict, -1 for the retraction of an earlier verdict (a correction). */
  sign: 1 | -1
  /** 1 when the impression was measured viewable; 0 when not viewable, unmeasured, or a click. */
  viewable: 0 | 1
  /** How viewability was measured (`mrc_50_1s`, `client`, …); '' when unmeasured. */
  view_method: string
  /** 1 when the event said `consent: false` (the IVT agent rules skip an event without agent and prefix then). */
  no_consent: 0 | 1
  /** 1 when a sender-side `uaHash` stood in for the agent (`ua` is then ''; no agent rule judges it). */
  ua_hashed: 0 | 1
}

export interface RollupRow {
  minute: number
  campaign_id: string
  ad_id: string
  publisher_id: string
  geo: string
  device: string
  impressions: number
  clicks: number
  ivt_impressions: number
  ivt_clicks: number
  duplicates: number
  orphan_clicks: number
  repeat_clicks: number
  /** Billable impressions whose viewability was measured, and those measured viewable. */
  measured_impressions: number
  viewable_impressions: number
  /** Distinct user keys (or IP hashes) of billable impressions, folded into `uniqState` by the sink. */
  uniques: string[]
  last_received_at: number
}

export interface RollupIvtRow {
  minute: number
  campaign_id: string
  publisher_id: string
  event_type: string
  reason: string
  events: number
}

export interface IvtDecisionRow {
  event_key: string
  event_type: string
  campaign_id: string
  publisher_id: string
  ts: number
  score: number
  reasons: string[]
  model_version: string
  quarantined: 0 | 1
  decided_at: number
}

export interface BadRowRow {
  received_at: number
  log_topic: string
  log_partition: number
  log_offset: number
  reason: string
  step: string
  details: string
  payload: string
  processor_artifact: string
  processor_version: string
}

export interface EdgeStatsRow {
  minute: number
  publisher_id: string
  received: number
  accepted: number
  rejected: number
  duplicate: number
  rejected_by_reason: Record<string, number>
}

/** A sink that is off (e.g. Iceberg not configured): callers always have a sink to call. */
export const disabledSink: Sink = {
  name: 'disabled',
  async write() {},
  async probe() {},
}

export function emptyBatch(topic: string, partition: number, minOffset: number, maxOffset: number): SinkBatch {
  return { topic, partition, minOffset, maxOffset, events: [], rollup: [], rollupIvt: [], ivtDecisions: [], badRows: [], edgeStats: [] }
}
