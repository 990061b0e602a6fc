import { REASONS } from '@adc/schemas'
import type { ClickHouseClient } from '@clickhouse/client'
import { DAY_MS, chTime, dayStart } from './days.js'

/**
 * The final, batch verdict for every accepted event of one UTC day, recomputed from `events_raw`:
 *
 * 1. Live verdicts: a log record written twice (a replay) counts once; the processor's signed
 *    corrections apply (a -1 orphan_click row retracts the +1 orphan_click, the +1 joined click stays).
 *    A re-delivery shares the event key but keeps its own `duplicate_delivery` verdict, so the
 *    original stays billed; several re-deliveries count as many duplicates.
 * 2. Rows the processor marked `duplicate_delivery` stay duplicates; rows it marked
 *    `unknown_campaign` (no booked campaign) stay unbilled and never take an impression's place.
 * 3. Business uniqueness: the first impression per impressionId is the impression, later ones are
 *    `duplicate_impression`; the first click per impressionId is the click, later ones `repeat_click`.
 * 4. IVT: the verdict of `modelVersion` in `ivt_decisions` when that model decided the event, else the
 *    verdict stored on the row (its reason, or its IVT reasons when the score is above 0.8).
 * 5. Final join: a click whose impression exists anywhere in that day or the previous one is joined
 *    (late impressions found, orphans resolved); otherwise it stays an `orphan_click`.
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

export async function classifyDay(client: ClickHouseClient, opts: ClassifyOptions): Promise<VerdictGroup[]> {
  const db = opts.database
  const start = dayStart(opts.day)
  const useModel = Boolean(opts.modelVersion)
  const signed = await hasSignColumn(client, db)
  const query = `
    SELECT campaign_id, publisher_id, event_type, verdict, stored_billable, stored_reason, late, sum(weight) AS events,
      sumIf(weight, view_method != '') AS measured, sumIf(weight, view_method != '' AND viewable = 1) AS viewable
    FROM (
      SELECT campaign_id, publisher_id, event_type, stored_billable, stored_reason, late, weight, view_method, viewable,
        multiIf(
          stored_reason = 'duplicate_delivery', 'duplicate_delivery',
          stored_reason = 'unknown_campaign', 'unknown_campaign',
          rank > 1 AND event_type = 'impression', 'duplicate_impression',
          rank > 1, 'repeat_click',
          ivt_reason != '', ivt_reason,
          event_type = 'click' AND NOT has_impression, 'orphan_click',
          'billable') AS verdict
      FROM (
        SELECT e.campaign_id AS campaign_id, e.publisher_id AS publisher_id, e.event_type AS event_type,
          e.billable AS stored_billable, e.reason AS stored_reason,
          e.received_at >= {cutoff:DateTime64(3, 'UTC')} AS late, e.weight AS weight, e.view_method AS view_method, e.viewable AS viewable,
          row_number() OVER (
            PARTITION BY e.event_type, e.impression_id, e.reason IN ('duplicate_delivery', 'unknown_campaign')
            ORDER BY e.ts, e.event_key) AS rank,
          ${
            useModel
              ? `if(dec.found = 1, if(dec.q = 1, if(notEmpty(dec.r), dec.r[1], 'ivt_quarantined'), ''), e.stored_ivt)`
              : 'e.stored_ivt'
          } AS ivt_reason,
          e.event_type = 'click' AND e.impression_id IN (
            SELECT impression_id FROM ${db}.events_raw
            WHERE event_type = 'impression' AND ts >= {prevStart:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
          ) AS has_impression
        FROM (
          -- Live verdicts: +1 rows whose verdict no -1 row retracted (the processor's signed
          -- corrections are rare, so the retracted set is small); weight 1 per log record.
          SELECT event_key, event_type, impression_id, campaign_id, publisher_id, ts, received_at, billable, reason,
            view_method, viewable, toInt64(1) AS weight,
            multiIf(reason IN {ivt:Array(String)}, toString(reason),
                    ivt_score > 0.8 AND notEmpty(ivt_reasons), toString(ivt_reasons[1]), '') AS stored_ivt
          FROM ${db}.events_raw
          WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}${
            signed
              ? `
            AND sign = 1
            AND (event_key, reason, billable) NOT IN (
              SELECT event_key, reason, billable FROM ${db}.events_raw
              WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')} AND sign = -1)`
              : ''
          }
          -- A log record written twice (a replay past the engine's dedup window) counts once.
          LIMIT 1 BY event_key, log_partition, log_offset, billable, reason
        ) AS e
        ${
          useModel
            ? `LEFT JOIN (
            SELECT event_key, 1 AS found, argMax(quarantined, decided_at) AS q, argMax(reasons, decided_at) AS r
            FROM ${db}.ivt_decisions
            WHERE model_version = {mv:String} AND ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
            GROUP BY event_key
          ) AS dec ON dec.event_key = e.event_key`
            : ''
        }
      )
    )
    GROUP BY campaign_id, publisher_id, event_type, verdict, stored_billable, stored_reason, late
    ORDER BY campaign_id, publisher_id, event_type, verdict`
  const rs = await client.query({
    query,
    format: 'JSONEachRow',
    query_params: {
      start: chTime(start),
      end: chTime(start + DAY_MS),
      prevStart: chTime(start - DAY_MS),
      cutoff: chTime(opts.receivedBefore ?? 253_402_300_799_000),
      ivt: IVT_REASONS,
      mv: opts.modelVersion ?? '',
    },
  })
  const rows = await rs.json<Record<string, unknown>>()
  return rows.map((r) => ({
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
  }))
}
