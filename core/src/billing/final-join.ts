import { REASONS, chTime } from '@adc/schemas'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Channel } from '@adc/schemas'
import { DAY_MS, dayStart } from './days.js'
import { CLICK_BEFORE_IMPRESSION_SKEW_MS, DEDUPE_HORIZON_MS, JOIN_LATENESS_MS, JOIN_WINDOWS_MS } from '../rules/rules.js'
import { QUARANTINE_ABOVE } from '../ivt/rules.js'

/**
 * The final, batch verdict for every accepted event of one UTC day, recomputed from `events_raw` with
 * the stream's rules (rules/rules.ts), in the stream's order (log order: an impressionId's events all
 * sit in one partition, so (partition, offset) is the order the processor saw them in):
 *
 * 1. One row per log record: a record written twice (a replay) counts once; of the processor's signed
 *    corrections the current verdict row is kept (a -1 orphan_click retracts the +1 orphan_click).
 *    An event for a campaign nobody booked (`unknown_campaign`) keeps that verdict and is inert: the
 *    stream sets it aside before dedupe and join, so it is no delivery, impression or click for any other.
 * 2. Delivery: a record whose key was seen before, at most the dedupe horizon earlier (edge receive
 *    time), is `duplicate_delivery`, whatever impression id or ts the earlier record carried (the rows
 *    of the neighbouring days are read for the day's keys too).
 * 3. Business: an impression whose impressionId had an impression at most the horizon before it is
 *    `duplicate_impression`; a click likewise `repeat_click`, where a click the edge marked as a
 *    prefetch (HEAD, prefetch/prerender, link scanner) neither counts as the earlier click nor is a
 *    repeat (it is judged `prefetch_click`). An impression is its id within its
 *    publisher (as the stream's `impressionScope`): ids are the clients', so another publisher's
 *    events with the same id are other impressions. The look-back crosses midnight: rows of the
 *    neighbouring days are read for the day's impressions.
 * 4. Join: a click takes the last counted impression before it when one was seen within the horizon,
 *    else the next counted impression after it if that reached the edge within the click's window plus
 *    the lateness; it is joined when it came after that impression (within the skew) and within its
 *    channel window (web 30 min, app 24 h), else `orphan_click`.
 * 5. IVT (impressions and joined clicks, as in the stream where an orphan never reaches the IVT step):
 *    the decision of `modelVersion` in `ivt_decisions` for the record's key and ts when given (a key
 *    resent past the horizon is another record, with a ts of its own, and has a decision of its own) (a reprocess scored every event of the day, and
 *    wrote the ones scored above 0: no decision is clean), else the
 *    decision stored on the row by the stream's model.
 *
 * Results are grouped, never per event, so a day of 10M events comes back as a few thousand rows.
 */

export const IVT_REASONS: string[] = Object.keys(REASONS).filter(
  (r) => r.startsWith('givt_') || r.startsWith('sivt_') || r === 'prefetch_click',
)
export const DUPLICATE_VERDICTS = new Set(['duplicate_delivery', 'duplicate_impression', 'repeat_click'])

export interface VerdictGroup {
  campaignId: string
  publisherId: string
  eventType: 'impression' | 'click'
  /** `billable` or the reason the event is not billed. */
  verdict: string
  /** What the stream (processor) decided: billable flag and reason. */
  storedBillable: boolean
  storedReason: string
  /** Received after `receivedBefore` (the snapshot's cut-off). */
  late: boolean
  events: number
  /** Of `events`: those with a viewability measurement, and those measured viewable. */
  measured: number
  viewable: number
}

export interface ClassifyOptions {
  database: string
  day: string
  /** An IVT model version whose decisions in `ivt_decisions` override the stored verdict. */
  modelVersion?: string
  /** Events received at or after this time are flagged `late` (epoch ms). */
  receivedBefore?: number
  /** Attribution windows (a reprocess with another rule version). @default JOIN_WINDOWS_MS */
  windowsMs?: Readonly<Record<Channel, number>>
  /**
   * Per log partition, the newest `processed_at` (epoch ms) of the day's rows the model scored
   * (scoreDay's marks): a row written after that was never scored, and is flagged `late` like an
   * event received after the cut-off (a partition the scoring did not see: every row). @default no limit
   */
  scoredThrough?: Record<string, number>
}

const signColumn = new WeakMap<ClickHouseClient, Map<string, boolean>>()

/**
 * Whether `events_raw` carries the processor's `sign` column. With it, a correction is a -1 row
 * repeating the old verdict plus a +1 row with the new one, so the current verdict of an event is
 * its latest +1 row; without it every row is a verdict.
 */
export async function hasSignColumn(client: ClickHouseClient, database: string): Promise<boolean> {
  let perDb = signColumn.get(client)
  if (!perDb) signColumn.set(client, (perDb = new Map()))
  const known = perDb.get(database)
  if (known !== undefined) return known
  const rs = await client.query({
    query: `SELECT count() AS n FROM system.columns WHERE database = {db:String} AND table = 'events_raw' AND name = 'sign'`,
    query_params: { db: database },
    format: 'JSONEachRow',
  })
  const [row] = await rs.json<{ n: number | string }>()
  const has = Number(row?.n ?? 0) > 0
  perDb.set(database, has)
  return has
}

/** Neighbouring days read for the day's impressionIds: the horizon, the 24 h late edge and the lateness. */
export const LOOK_AROUND_MS = 3 * DAY_MS

const ms = (col: string) => `toUnixTimestamp64Milli(${col})`

function windowSql(channelCol: string, w: Readonly<Record<Channel, number>>): string {
  return `multiIf(${channelCol} = 'app', ${w.app}, ${channelCol} = 'ctv', ${w.ctv}, ${channelCol} = 's2s', ${w.s2s}, ${w.web})`
}

/**
 * One log partition's records with a `ts` in the day, one row each: its final verdict and what the stream wrote, plus
 * what an IVT model needs (`reaches_ivt`, `imp_ts`; with `withFacts` the agent, IP prefix, user key,
 * prefetch flag, and whether consent was withheld or the agent sent hashed, left out otherwise: every column rides through five window sorts). Every
 * event of an impressionId (and every delivery of a key) sits in one log partition, so the rules
 * run partition by partition: the engine sorts one partition at a time, and memory is bounded by the
 * largest partition's day, not the day. Parameters: see `verdictParams`.
 */
export function verdictsSql(db: string, useModel: boolean, withFacts = false, windowsMs: Readonly<Record<Channel, number>> = JOIN_WINDOWS_MS): string {
  const H = DEDUPE_HORIZON_MS
  const arrival = 'log_partition, log_offset, r, event_key'
  return `
    SELECT *,
      multiIf(
        unbooked, 'unknown_campaign',
        dd, 'duplicate_delivery',
        dup AND event_type = 'impression', 'duplicate_impression',
        dup, 'repeat_click',
        event_type = 'click' AND NOT joined, 'orphan_click',
        ivt_reason != '', ivt_reason,
        'billable') AS verdict
    FROM (
      SELECT *,
        event_type = 'click' AND NOT unbooked AND NOT dd AND NOT dup AND (
          if(imp_before, head_before_ts IS NOT NULL AND ts_ms - head_before_ts >= -${CLICK_BEFORE_IMPRESSION_SKEW_MS} AND ts_ms - head_before_ts <= win,
             head_after_ts IS NOT NULL AND ts_ms - head_after_ts >= -${CLICK_BEFORE_IMPRESSION_SKEW_MS} AND ts_ms - head_after_ts <= win
               AND head_after_r <= ts_ms + win + ${JOIN_LATENESS_MS})) AS joined,
        if(imp_before, head_before_ts, head_after_ts) AS imp_ts,
        NOT unbooked AND NOT dd AND NOT dup AND (event_type = 'impression' OR joined) AS reaches_ivt,
        -- Every event past dedupe counts toward the IVT bursts at its arrival, a click joined or not
        -- (the stream's join step counts the clicks IVT does not see when they arrive).
        NOT unbooked AND NOT dd AND NOT dup AS counts_burst
      FROM (
        SELECT *,
          anyLast(if(is_head, ts_ms, NULL)) OVER (PARTITION BY publisher_id, impression_id ORDER BY ${arrival} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS head_before_ts,
          anyLast(if(is_head, ts_ms, NULL)) OVER (PARTITION BY publisher_id, impression_id ORDER BY ${arrival.split(', ').map((c) => `${c} DESC`).join(', ')} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS head_after_ts,
          anyLast(if(is_head, r, NULL)) OVER (PARTITION BY publisher_id, impression_id ORDER BY ${arrival.split(', ').map((c) => `${c} DESC`).join(', ')} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS head_after_r
        FROM (
          SELECT *,
            prev_imp_r IS NOT NULL AND r - prev_imp_r <= ${H} AS imp_before,
            NOT dd AND if(event_type = 'impression', imp_before, NOT scan AND prev_click_r IS NOT NULL AND r - prev_click_r <= ${H}) AS dup,
            event_type = 'impression' AND NOT unbooked AND NOT dd AND NOT dup AS is_head
          FROM (
            SELECT *,
              anyLast(if(event_type = 'impression' AND NOT unbooked AND NOT dd, r, NULL)) OVER (PARTITION BY publisher_id, impression_id ORDER BY ${arrival} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_imp_r,
              anyLast(if(event_type = 'click' AND NOT unbooked AND NOT dd AND NOT scan, r, NULL)) OVER (PARTITION BY publisher_id, impression_id ORDER BY ${arrival} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_click_r
            FROM (
              SELECT *,
                coalesce(r - lagInFrame(toNullable(r)) OVER (PARTITION BY event_key, unbooked ORDER BY ${arrival} ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) <= ${H}, false) AS dd
              FROM (
                SELECT e.*, ${windowSql('e.channel', windowsMs)} AS win,
                  ${
                    useModel
                      ? `if(dec.found = 1 AND dec.q = 1, if(notEmpty(dec.reasons), toString(dec.reasons[1]), 'ivt_quarantined'), '')`
                      : 'e.stored_ivt'
                  } AS ivt_reason
                FROM (
                  SELECT event_key, event_type, impression_id, campaign_id, publisher_id, channel, log_partition, log_offset,${withFacts ? ' ua, ip_prefix, user_key, prefetch, no_consent, ua_hashed,' : ''}
                    ${ms('ts')} AS ts_ms, ${ms('received_at')} AS r, ${ms('processed_at')} AS p_ms,
                    -- A HEAD, prefetch or link scanner on the click redirect: no click of the
                    -- impression's (neither its first nor a repeat; IVT keeps it as prefetch_click).
                    event_type = 'click' AND prefetch != 0 AS scan,
                    ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')} AS in_day,
                    received_at >= {cutoff:DateTime64(3, 'UTC')} OR ${ms('processed_at')} > {through:Int64} AS late,
                    billable AS stored_billable, reason AS stored_reason, view_method, viewable,
                    -- An event for a campaign nobody booked is inert: the stream sets it aside before
                    -- dedupe and join, so it is no delivery, impression or click for any other event.
                    reason = 'unknown_campaign' AS unbooked,
                    multiIf(reason IN {ivt:Array(String)}, toString(reason),
                            ivt_score > toFloat32(${QUARANTINE_ABOVE}) AND notEmpty(ivt_reasons), toString(ivt_reasons[1]), '') AS stored_ivt
                  FROM ${db}.events_raw
                  WHERE ts >= {lookStart:DateTime64(3, 'UTC')} AND ts < {lookEnd:DateTime64(3, 'UTC')}
                    AND log_partition = {part:UInt32} AND sign = 1
                    -- The day's rows, every row of their impression ids, and every earlier delivery of
                    -- their keys: a resend may carry another impression id (and a ts across midnight),
                    -- and is still a re-delivery of the same key.
                    AND (ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
                      OR (publisher_id, impression_id) IN (SELECT publisher_id, impression_id FROM ${db}.events_raw
                        WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')} AND log_partition = {part:UInt32})
                      OR event_key IN (SELECT event_key FROM ${db}.events_raw
                        WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')} AND log_partition = {part:UInt32}))
                    -- A -1 row retracts the verdict it repeats of its own record (key and log offset): a
                    -- re-delivery with the same key (another record) keeps that verdict.
                    AND (event_key, log_offset, reason, billable) NOT IN (
                      SELECT event_key, log_offset, reason, billable FROM ${db}.events_raw
                      WHERE ts >= {lookStart:DateTime64(3, 'UTC')} AND ts < {lookEnd:DateTime64(3, 'UTC')} AND log_partition = {part:UInt32} AND sign = -1)
                  -- The current verdict row of each record; a record written twice counts once.
                  ORDER BY processed_at DESC
                  LIMIT 1 BY event_key, log_partition, log_offset
                ) AS e
                ${
                  useModel
                    ? `LEFT JOIN (
                  SELECT event_key, ${ms('ts')} AS ts_ms, 1 AS found, argMax(quarantined, decided_at) AS q, argMax(reasons, decided_at) AS reasons
                  FROM ${db}.ivt_decisions
                  WHERE model_version = {mv:String} AND ts >= {lookStart:DateTime64(3, 'UTC')} AND ts < {lookEnd:DateTime64(3, 'UTC')}
                  GROUP BY event_key, ts_ms
                ) AS dec ON dec.event_key = e.event_key AND dec.ts_ms = e.ts_ms`
                    : ''
                }
              )
            )
          )
        )
      )
    )
    WHERE in_day`
}

export function verdictParams(opts: Pick<ClassifyOptions, 'day' | 'modelVersion' | 'receivedBefore' | 'scoredThrough'>, partition: number): Record<string, unknown> {
  const start = dayStart(opts.day)
  return rangeVerdictParams(start, start + DAY_MS, opts, partition)
}

/** As verdictParams, for the records whose `ts` lies in [start, end) (epoch ms), with the look-around on both sides. */
export function rangeVerdictParams(start: number, end: number, opts: Pick<ClassifyOptions, 'modelVersion' | 'receivedBefore' | 'scoredThrough'>, partition: number): Record<string, unknown> {
  return {
    through: opts.scoredThrough ? (opts.scoredThrough[partition] ?? -1) : Number.MAX_SAFE_INTEGER,
    part: partition,
    start: chTime(start),
    end: chTime(end),
    lookStart: chTime(start - LOOK_AROUND_MS),
    lookEnd: chTime(end + LOOK_AROUND_MS),
    cutoff: chTime(opts.receivedBefore ?? 253_402_300_799_000),
    ivt: IVT_REASONS,
    mv: opts.modelVersion ?? '',
  }
}

/** Log partitions with records whose `ts` falls in the day. */
export async function dayPartitions(client: ClickHouseClient, database: string, day: string): Promise<number[]> {
  const start = dayStart(day)
  const rs = await client.query({
    query: `SELECT DISTINCT log_partition AS p FROM ${database}.events_raw WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')} ORDER BY p`,
    query_params: { start: chTime(start), end: chTime(start + DAY_MS) },
    format: 'JSONEachRow',
  })
  return (await rs.json<{ p: number }>()).map((r) => Number(r.p))
}

export async function classifyDay(client: ClickHouseClient, opts: ClassifyOptions): Promise<VerdictGroup[]> {
  return (await classifyDayWithMarks(client, opts)).groups
}

/**
 * classifyDay, and per log partition the newest `processed_at` (epoch ms) among the day's rows the
 * classification read, in the same query: every row of the day a processor writes later, a correction
 * included, carries a newer one (one batch of a partition in flight at a time, its rows stamped when it
 * is built), whether or not its batch was built before the close started. See BillingJobs' re-close.
 */
export async function classifyDayWithMarks(client: ClickHouseClient, opts: ClassifyOptions): Promise<{ groups: VerdictGroup[]; marks: Record<string, number> }> {
  const query = `
    SELECT campaign_id, publisher_id, event_type, verdict, stored_billable, stored_reason, late, count() AS events,
      countIf(view_method != '') AS measured, countIf(view_method != '' AND viewable = 1) AS viewable, max(p_ms) AS p_max
    FROM (${verdictsSql(opts.database, Boolean(opts.modelVersion), false, opts.windowsMs)})
    GROUP BY campaign_id, publisher_id, event_type, verdict, stored_billable, stored_reason, late`
  const merged = new Map<string, VerdictGroup>()
  const marks: Record<string, number> = {}
  for (const partition of await dayPartitions(client, opts.database, opts.day)) {
    const rs = await client.query({ query, format: 'JSONEachRow', query_params: verdictParams(opts, partition) })
    for (const r of await rs.json<Record<string, unknown>>()) {
      marks[partition] = Math.max(marks[partition] ?? 0, Number(r.p_max))
      const g: VerdictGroup = {
        campaignId: String(r.campaign_id),
        publisherId: String(r.publisher_id),
        eventType: r.event_type === 'click' ? 'click' : 'impression',
        verdict: String(r.verdict),
        storedBillable: Number(r.stored_billable) === 1,
        storedReason: String(r.stored_reason),
        late: Number(r.late) === 1,
        events: Number(r.events),
        measured: Number(r.measured),
        viewable: Number(r.viewable),
      }
      const key = [g.campaignId, g.publisherId, g.eventType, g.verdict, g.storedBillable, g.storedReason, g.late].join('\u001f')
      const had = merged.get(key)
      if (had) {
        had.events += g.events
        had.measured += g.measured
        had.viewable += g.viewable
      } else merged.set(key, g)
    }
  }
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
  const groups = [...merged.values()].sort((a, b) => cmp(a.campaignId, b.campaignId) || cmp(a.publisherId, b.publisherId) || cmp(a.eventType, b.eventType) || cmp(a.verdict, b.verdict))
  return { groups, marks }
}

/** Per-record final verdicts of a day, keyed `partition:offset:eventKey` (property tests, audits). */
export async function recordVerdicts(client: ClickHouseClient, opts: ClassifyOptions): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const partition of await dayPartitions(client, opts.database, opts.day)) {
    const rs = await client.query({
      query: `SELECT log_partition, log_offset, event_key, verdict FROM (${verdictsSql(opts.database, Boolean(opts.modelVersion), false, opts.windowsMs)})`,
      format: 'JSONEachRow',
      query_params: verdictParams(opts, partition),
    })
    for (const r of await rs.json<Record<string, unknown>>()) out.set(`${r.log_partition}:${r.log_offset}:${r.event_key}`, String(r.verdict))
  }
  return out
}
