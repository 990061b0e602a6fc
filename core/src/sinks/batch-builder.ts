import type { PipelineOutcome } from '../pipeline/pipeline.js'
import type { SinkEvent } from '../pipeline/types.js'
import { writeEventRowBinary } from './clickhouse-sink.js'
import { RowBinaryWriter } from './row-binary-writer.js'
import { emptyBatch, type EventRow, type RollupIvtRow, type RollupRow, type SinkBatch } from './sink.js'
import { MAX_EDGE_CLOCK_AHEAD_MS } from '../rules/rules.js'

export const PROCESSOR_ARTIFACT = '@adc/core/processor'
export const PROCESSOR_VERSION = '0.1.0'


/**
 * A bad row's `received_at`: when the edge received the record's event (the envelope's
 * `receivedAt`), as events_raw and the edge's own counts date it, so the accounting report counts a
 * kept record on the day the edge accepted it even when it reached the log later (a Spool retry, a
 * request just before midnight). The log's append time when the payload names no plausible one
 * (not an envelope, or a time no edge clock gives: past the append time by more than an hour).
 */
export function badRowReceivedAt(payload: string, appendedAt: number): number {
  let receivedAt: unknown
  try {
    receivedAt = (JSON.parse(payload) as { receivedAt?: unknown } | null)?.receivedAt
  } catch {
    return appendedAt
  }
  return Number.isSafeInteger(receivedAt) && (receivedAt as number) >= 0 && (receivedAt as number) <= appendedAt + MAX_EDGE_CLOCK_AHEAD_MS ? (receivedAt as number) : appendedAt
}

/** How an outcome counts in the minute rollup. */
type Counter = 'impressions' | 'clicks' | 'ivt_impressions' | 'ivt_clicks' | 'duplicates' | 'orphan_clicks' | 'repeat_clicks'

export interface OutcomeCounts {
  billable: number
  unbilled: Record<string, number>
  badRows: Record<string, number>
  pending: number
}

/**
 * Turns pipeline outcomes of one batch into sink rows: one raw row per event verdict, rollup deltas
 * pre-aggregated per (minute, campaign, ad, publisher, geo, device) with signed counts, IVT counts
 * per reason, IVT decisions (score > 0) and bad rows. A click joined after it was written as an
 * orphan becomes a correction: a -1 row repeating the orphan verdict and a +1 row with the new one.
 * A `join_pending` click is written at once as kept-not-billed; when it is resolved, a -1 row
 * retracts it and the resolved verdict follows (+1).
 */
export class BatchBuilder {
  private readonly batch: SinkBatch
  private readonly rollup = new Map<string, RollupRow & { uniqueSet?: Set<string> }>()
  private readonly rollupIvt = new Map<string, RollupIvtRow>()
  private lastCell: (RollupRow & { uniqueSet?: Set<string> }) | undefined
  readonly counts: OutcomeCounts = { billable: 0, unbilled: {}, badRows: {}, pending: 0 }
  maxReceivedAt = 0
  /** The written rows' earliest and latest `ts` (see SinkBatch `eventsRowBinary`). */
  private minTs = Infinity
  private maxTs = -Infinity
  /** events_raw rows, written as they are built (no row object outlives its event). */
  private readonly rows: RowBinaryWriter
  /** The row being written (see addVerdict). */
  private readonly row: EventRow = emptyEventRow()

  /**
   * `rowObjects`: also keep the events_raw rows as objects in `batch.events` (a sink that reads
   * them: Iceberg off chDB, see lakeReadsRowBinary). Without, each row is written to `batch.eventsRowBinary` and dropped at once, so the
   * batch keeps no per-event objects alive (they would outlive a young-generation GC).
   * `rows`: a writer to write the events_raw rows into, emptied first (a worker passes its own, so
   * each batch reuses one buffer; the batch's `eventsRowBinary` is then valid until that worker
   * builds its next batch). @default a new writer sized for the offset range
   */
  constructor(topic: string, partition: number, minOffset: number, maxOffset: number, private readonly now = Date.now(), private readonly rowObjects = true, rows?: RowBinaryWriter) {
    this.batch = emptyBatch(topic, partition, minOffset, maxOffset)
    this.rows = rows?.reset() ?? new RowBinaryWriter(Math.min(32 << 20, Math.max(1 << 16, (maxOffset - minOffset + 1) * 480)))
  }

  add(outcome: PipelineOutcome<SinkEvent>): void {
    if (outcome.kind === 'bad_row') {
      this.counts.badRows[outcome.reason] = (this.counts.badRows[outcome.reason] ?? 0) + 1
      return // bad rows carry their record through addBadRow (the outcome has no record reference)
    }
    const ev = outcome.value
    if (outcome.kind === 'unbilled' && outcome.reason === 'join_pending') {
      // Written at once (kept, not billed), so the books balance while the click waits; its
      // resolution retracts this row.
      this.counts.pending++
      this.addVerdict(ev, 'join_pending', false, 1)
      return
    }
    const reason = outcome.kind === 'unbilled' ? outcome.reason : ''
    if (outcome.kind === 'ok') this.counts.billable++
    else this.counts.unbilled[reason] = (this.counts.unbilled[reason] ?? 0) + 1
    if (ev.join?.retractPending) this.addVerdict(ev, 'join_pending', false, -1)
    if (ev.join?.correction) {
      // Retract the orphan verdict written earlier, then write the new one.
      this.addVerdict(ev, 'orphan_click', false, -1)
    }
    this.addVerdict(ev, reason, outcome.kind === 'ok', 1)
  }

  addBadRow(ref: { topic: string; partition: number; offset: number }, appendedAt: number, outcome: Extract<PipelineOutcome<unknown>, { kind: 'bad_row' }>): void {
    this.batch.badRows.push({
      received_at: badRowReceivedAt(outcome.payload, appendedAt),
      log_topic: ref.topic,
      log_partition: ref.partition,
      log_offset: ref.offset,
      reason: outcome.reason,
      step: outcome.step,
      details: outcome.error,
      payload: outcome.payload,
      processor_artifact: PROCESSOR_ARTIFACT,
      processor_version: PROCESSOR_VERSION,
    })
  }

  private addVerdict(ev: SinkEvent, reason: string, billable: boolean, sign: 1 | -1): void {
    const env = ev.envelope
    const e = env.event
    const isClick = env.type === 'click'
    const ivt = ev.ivt
    const quarantined = !!ivt?.quarantined && !billable && sign === 1 && reason === ivt.reasons[0]
    if (env.receivedAt > this.maxReceivedAt) this.maxReceivedAt = env.receivedAt
    // One row object per builder, filled for each verdict: its bytes are written at once, and only
    // a builder asked for row objects keeps a copy.
    const row = this.row
    row.event_key = env.key
    row.event_type = env.type
    row.event_id = e.eventId
    row.impression_id = e.impressionId
    row.click_id = isClick ? (e as { clickId: string }).clickId : ''
    row.campaign_id = e.campaignId
    row.ad_id = e.adId
    row.publisher_id = e.publisherId
    row.request_id = e.requestId
    row.ts = e.ts
    if (e.ts < this.minTs) this.minTs = e.ts
    if (e.ts > this.maxTs) this.maxTs = e.ts
    row.received_at = env.receivedAt
    row.channel = e.channel ?? ''
    row.device = e.device ?? ''
    row.geo = e.geo ?? ''
    row.placement = e.placement ?? ''
    row.user_key = e.userKey ?? ''
    row.ua = env.client.ua ?? ''
    row.ip_prefix = env.client.ipPrefix ?? ''
    row.ip_hash = env.client.ipHash ?? ''
    row.edge_source = env.edge.source
    row.edge_dedupe = env.edge.dedupe
    row.prefetch = env.edge.prefetch ? 1 : 0
    row.billable = billable ? 1 : 0
    row.reason = reason
    row.ivt_score = sign === 1 && ivt ? ivt.score : 0
    row.ivt_reasons = sign === 1 && ivt ? ivt.reasons : NO_REASONS
    row.model_version = sign === 1 && ivt ? ivt.modelVersion : ''
    row.joined = ev.join?.status === 'joined' && sign === 1 ? 1 : 0
    row.log_partition = ev.ref.partition
    row.log_offset = ev.ref.offset
    row.processed_at = this.now
    row.sign = sign
    // An impression's viewability as stored: measured when the event says `viewable` (true or
    // false), by its `viewMethod`, else `client` (an SDK's own measurement); unmeasured ('') without
    // `viewable`. Clicks carry none.
    const measured = env.type === 'impression' && env.event.viewable !== undefined
    row.viewable = measured && env.event.viewable ? 1 : 0
    row.view_method = measured ? (env.event.viewMethod ?? 'client') : ''
    // What the agent rules read besides the agent: a model run over stored rows needs them too.
    row.no_consent = e.consent === false ? 1 : 0
    row.ua_hashed = env.client.ua === undefined && env.client.uaHash !== undefined ? 1 : 0
    writeEventRowBinary(this.rows, row)
    if (this.rowObjects) this.batch.events.push({ ...row, ivt_reasons: [...row.ivt_reasons] })

    let counter: Counter | undefined
    if (billable) counter = isClick ? 'clicks' : 'impressions'
    else if (quarantined) counter = isClick ? 'ivt_clicks' : 'ivt_impressions'
    else if (reason === 'duplicate_delivery' || reason === 'duplicate_impression') counter = 'duplicates'
    else if (reason === 'orphan_click') counter = 'orphan_clicks'
    else if (reason === 'repeat_click') counter = 'repeat_clicks'
    const minute = Math.floor(e.ts / 60_000) * 60
    // Consecutive events mostly fall in the same cell: compare with the last one before building a key.
    let r = this.lastCell
    if (!r || r.minute !== minute || r.campaign_id !== e.campaignId || r.ad_id !== e.adId || r.publisher_id !== e.publisherId || r.geo !== row.geo || r.device !== row.device) {
      const key = `${minute}\u001f${e.campaignId}\u001f${e.adId}\u001f${e.publisherId}\u001f${row.geo}\u001f${row.device}`
      r = this.rollup.get(key)
      if (!r) {
        r = { minute, campaign_id: e.campaignId, ad_id: e.adId, publisher_id: e.publisherId, geo: row.geo, device: row.device, impressions: 0, clicks: 0, ivt_impressions: 0, ivt_clicks: 0, duplicates: 0, orphan_clicks: 0, repeat_clicks: 0, measured_impressions: 0, viewable_impressions: 0, uniques: [], last_received_at: 0 }
        this.rollup.set(key, r)
      }
      this.lastCell = r
    }
    if (counter) r[counter] += sign
    if (counter === 'impressions' && row.view_method !== '') {
      r.measured_impressions += sign
      r.viewable_impressions += sign * row.viewable
    }
    if (env.receivedAt > r.last_received_at) r.last_received_at = env.receivedAt
    if (billable && !isClick && sign === 1) {
      const u = e.userKey || env.client.ipHash
      if (u) (r.uniqueSet ??= new Set()).add(u)
    }
    if (quarantined && ivt) {
      for (const why of ivt.reasons) {
        const k = `${minute}\u001f${e.campaignId}\u001f${e.publisherId}\u001f${env.type}\u001f${why}`
        const c = this.rollupIvt.get(k)
        if (c) c.events += sign
        else this.rollupIvt.set(k, { minute, campaign_id: e.campaignId, publisher_id: e.publisherId, event_type: env.type, reason: why, events: sign })
      }
    }
    if (ivt && ivt.score > 0 && sign === 1) {
      this.batch.ivtDecisions.push({ event_key: env.key, event_type: env.type, campaign_id: e.campaignId, publisher_id: e.publisherId, ts: e.ts, score: ivt.score, reasons: ivt.reasons, model_version: ivt.modelVersion, quarantined: ivt.quarantined ? 1 : 0, decided_at: this.now })
    }
  }

  build(): SinkBatch {
    for (const r of this.rollup.values()) {
      const { uniqueSet, ...row } = r
      this.batch.rollup.push({ ...row, uniques: uniqueSet ? [...uniqueSet] : [] })
    }
    this.batch.rollupIvt.push(...this.rollupIvt.values())
    this.batch.eventsRowBinary = { bytes: this.rows.bytes(), refusal: this.rows.refusal, ...(this.minTs <= this.maxTs ? { tsRange: [this.minTs, this.maxTs] as [number, number] } : {}) }
    return this.batch
  }
}

const NO_REASONS: string[] = []

function emptyEventRow(): EventRow {
  return {
    event_key: '', event_type: 'impression', event_id: '', impression_id: '', click_id: '', campaign_id: '', ad_id: '', publisher_id: '', request_id: '',
    ts: 0, received_at: 0, channel: '', device: '', geo: '', placement: '', user_key: '', ua: '', ip_prefix: '', ip_hash: '', edge_source: '', edge_dedupe: '',
    prefetch: 0, billable: 0, reason: '', ivt_score: 0, ivt_reasons: NO_REASONS, model_version: '', joined: 0, log_partition: 0, log_offset: 0, processed_at: 0,
    sign: 1, viewable: 0, view_method: '', no_consent: 0, ua_hashed: 0,
  }
}
