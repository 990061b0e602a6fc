import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { EVENTS_TOPIC, chTime } from '@adc/schemas'
import { DAY_MS, dayStart } from '../../billing/days.js'
import { DUPLICATE_VERDICTS, IVT_REASONS, LOOK_AROUND_MS, classifyDay, hasSignColumn } from '../../billing/final-join.js'
import { type ResolvedApiDeps, type ApiEnv, bearerSecurity, dayParam, dayReach, refuseBeyondRetention, refuseFutureDay, requireAdmin } from '../context.js'
import { errorResponses } from '../errors.js'
import { perCampaign } from './billing.js'

const ivtSet = new Set([...IVT_REASONS, 'ivt_quarantined'])
const CATEGORIES = ['late', 'orphan_resolved', 'ivt_changed', 'duplicate', 'other'] as const
type Category = (typeof CATEGORIES)[number]

const Totals = z.object({
  impressions: z.number().int(),
  clicks: z.number().int(),
  ivtImpressions: z.number().int(),
  ivtClicks: z.number().int(),
})
const ByCategory = z.object(Object.fromEntries(CATEGORIES.map((k) => [k, z.number().int()])) as Record<Category, z.ZodNumber>)

const ReconcileSchema = z
  .object({
    day: z.string(),
    final: z.boolean(),
    snapshotVersion: z.number().int().nullable(),
    campaigns: z.array(
      z.object({
        campaignId: z.string(),
        stream: Totals,
        snapshot: Totals.nullable(),
        difference: z.object({ impressions: z.number().int(), clicks: z.number().int() }),
        explained: z.object({ impressions: ByCategory, clicks: ByCategory }),
        unexplained: z.object({ impressions: z.number().int(), clicks: z.number().int() }),
      }),
    ),
  })
  .openapi('Reconcile')

const AccountingSchema = z
  .object({
    day: z.string(),
    balanced: z.boolean(),
    publishers: z.array(
      z.object({
        publisherId: z.string(),
        edge: z.object({
          received: z.number().int(),
          accepted: z.number().int(),
          rejected: z.number().int(),
          duplicate: z.number().int(),
          rejectedByReason: z.record(z.string(), z.number().int()),
        }),
        core: z.object({
          accepted: z.number().int(),
          billed: z.number().int(),
          keptByReason: z.record(z.string(), z.number().int()),
          logCopies: z.number().int().openapi({
            description:
              'log records repeating an accepted event\'s envelope (same idempotency key and edge receive time: a produce retried after it was stored); kept as duplicate_delivery, never billed, and not counted in accepted',
          }),
        }),
        differences: z.object({
          edgeUnbalanced: z.number().int().openapi({ description: 'received - (accepted + rejected + duplicate)' }),
          inFlightOrMissing: z.number().int().openapi({ description: 'edge accepted - core accepted' }),
        }),
        balanced: z.boolean(),
      }),
    ),
  })
  .openapi('Accounting')

const reconcileRoute = createRoute({
  method: 'get',
  path: '/v1/reports/reconcile/{day}',
  summary: 'Stream (rollups) against the final snapshot per campaign, differences explained by reason (admin key)',
  security: bearerSecurity,
  request: { params: z.object({ day: dayParam.openapi({ param: { name: 'day', in: 'path' } }) }) },
  responses: {
    200: {
      description:
        'Per campaign: stream and snapshot totals, their difference (stream minus snapshot), the part explained by each reason and what stays unexplained',
      content: {
        'application/json': {
          schema: ReconcileSchema,
        },
      },
    },
    ...errorResponses(400, 401, 403, 410),
  },
})

const accountingRoute = createRoute({
  method: 'get',
  path: '/v1/reports/accounting',
  summary: 'The accounting invariant per publisher for a UTC day (admin key)',
  security: bearerSecurity,
  request: { query: z.object({ day: dayParam }) },
  responses: {
    200: {
      description:
        'edge: received = accepted + rejected + duplicate; core: edge accepted = billed + kept with a reason, one envelope counted once however many log records repeat it (logCopies). Differences are shown as they are (events still in the log show as a positive inFlightOrMissing).',
      content: {
        'application/json': {
          schema: AccountingSchema,
        },
      },
    },
    ...errorResponses(400, 401, 403, 410),
  },
})

/** What the reports read: ClickHouse, the snapshots, the tenants (which campaigns are booked). */
export type ReportDeps = Pick<ResolvedApiDeps, 'clickhouse' | 'database' | 'billing' | 'tenants'>

export type ReconcileReport = z.infer<typeof ReconcileSchema>
export type AccountingReport = z.infer<typeof AccountingSchema>

/**
 * Stream (rollups) against the day's latest final snapshot per campaign, the difference
 * explained by category. A UTC day is whole hours, so the stream is read from the hourly rollup,
 * which holds exactly the minute rows' sums and outlives them (RETENTION_HOURLY_ROLLUP_DAYS). `now` bounds the events of a day that has no final snapshot yet.
 */
export async function reconcileReport(deps: ReportDeps, day: string, now: number): Promise<ReconcileReport> {
  const { clickhouse: ch, database: db, billing } = deps
  const clock = () => now
  const start = dayStart(day)
  const streamRs = await ch.query({
    query: `SELECT campaign_id, sum(impressions) AS impressions, sum(clicks) AS clicks, sum(ivt_impressions) AS ivt_impressions, sum(ivt_clicks) AS ivt_clicks
      FROM ${db}.rollup_hour WHERE hour >= {start:DateTime64(3, 'UTC')} AND hour < {end:DateTime64(3, 'UTC')}
      GROUP BY campaign_id ORDER BY campaign_id`,
    query_params: { start: chTime(start), end: chTime(start + DAY_MS) },
    format: 'JSONEachRow',
  })
  const stream = new Map(
    (await streamRs.json<Record<string, unknown>>()).map((r) => [
      String(r.campaign_id),
      { impressions: Number(r.impressions), clicks: Number(r.clicks), ivtImpressions: Number(r.ivt_impressions), ivtClicks: Number(r.ivt_clicks) },
    ]),
  )
  const latest = await billing.snapshots.latestFinal(day)
  const snapshot = new Map(
    latest ? perCampaign(await billing.snapshots.lines(day, latest.version)).map((l) => [l.campaignId, l] as const) : [],
  )
  // The version's own rules (a promoted reprocess's model and attribution windows), so every
  // difference is explained by the rules that made the snapshot.
  const rules = latest ? billing.rulesOf(latest, day) : {}
  const groups = await classifyDay(ch, {
    database: db,
    day,
    ...rules,
    receivedBefore: latest ? latest.receivedBefore || latest.createdAt : clock(),
  })
  const zero = () => Object.fromEntries(CATEGORIES.map((k) => [k, 0])) as Record<Category, number>
  const explained = new Map<string, { impressions: Record<Category, number>; clicks: Record<Category, number> }>()
  for (const g of groups) {
    // Each event adds (counted by the stream) - (counted by the snapshot) to the difference.
    const delta = (g.storedBillable ? 1 : 0) - (g.verdict === 'billable' && !g.late ? 1 : 0)
    if (delta === 0) continue
    const category: Category = g.late
      ? 'late'
      : g.storedReason === 'orphan_click' || g.storedReason === 'join_pending'
        ? 'orphan_resolved'
        : ivtSet.has(g.verdict) || ivtSet.has(g.storedReason)
          ? 'ivt_changed'
          : DUPLICATE_VERDICTS.has(g.verdict) || DUPLICATE_VERDICTS.has(g.storedReason)
            ? 'duplicate'
            : 'other'
    let e = explained.get(g.campaignId)
    if (!e) explained.set(g.campaignId, (e = { impressions: zero(), clicks: zero() }))
    e[g.eventType === 'click' ? 'clicks' : 'impressions'][category] += delta * g.events
  }
  const ids = [...new Set([...stream.keys(), ...snapshot.keys(), ...explained.keys()])].filter(Boolean).sort()
  const empty = { impressions: 0, clicks: 0, ivtImpressions: 0, ivtClicks: 0 }
  const sum = (r: Record<Category, number>) => CATEGORIES.reduce((s, k) => s + r[k], 0)
  const campaigns = ids.map((campaignId) => {
    const s = stream.get(campaignId) ?? empty
    const snap = snapshot.get(campaignId)
    const snapTotals = snap
      ? { impressions: snap.impressions, clicks: snap.clicks, ivtImpressions: snap.ivtImpressions, ivtClicks: snap.ivtClicks }
      : latest
        ? empty
        : null
    const e = explained.get(campaignId) ?? { impressions: zero(), clicks: zero() }
    const difference = { impressions: s.impressions - (snapTotals?.impressions ?? 0), clicks: s.clicks - (snapTotals?.clicks ?? 0) }
    return {
      campaignId,
      stream: s,
      snapshot: snapTotals,
      difference,
      explained: e,
      unexplained: { impressions: difference.impressions - sum(e.impressions), clicks: difference.clicks - sum(e.clicks) },
    }
  })
  return { day, final: latest !== undefined, snapshotVersion: latest?.version ?? null, campaigns }
}

/** How far before the day the accounting report reads events_raw by `ts` (events received in the day). */
const ACCOUNTING_TS_LOOKBACK_MS = DAY_MS + 3_600_000

/**
 * The accounting invariant per publisher for a UTC day (edge counts against core's verdicts). The
 * edge's counts come from their hourly rollup (whole hours, kept past the minute rows).
 */
export async function accountingReport(deps: ReportDeps, day: string): Promise<AccountingReport> {
  const { clickhouse: ch, database: db, tenants } = deps
  const start = dayStart(day)
  const params = {
    start: chTime(start),
    end: chTime(start + DAY_MS),
    // Event time is within 24 h before and 5 min after receipt (edge clock rules): prunes partitions.
    tsFrom: chTime(start - ACCOUNTING_TS_LOOKBACK_MS),
    tsTo: chTime(start + DAY_MS + 3_600_000),
  }
  const edgeRs = await ch.query({
    query: `SELECT publisher_id, sum(received) AS received, sum(accepted) AS accepted, sum(rejected) AS rejected, sum(duplicate) AS duplicate,
        sumMap(rejected_by_reason) AS by_reason
      FROM ${db}.edge_stats_hour WHERE hour >= {start:DateTime64(3, 'UTC')} AND hour < {end:DateTime64(3, 'UTC')}
      GROUP BY publisher_id`,
    query_params: params,
    format: 'JSONEachRow',
  })
  // A log record written twice (a replay past the engine's dedup window) counts once, while each
  // re-delivery is its own record; with signed corrections, the -1 row retracts the verdict it repeats.
  const signed = await hasSignColumn(ch, db)
  const ofDay = `FROM ${db}.events_raw
        WHERE received_at >= {start:DateTime64(3, 'UTC')} AND received_at < {end:DateTime64(3, 'UTC')}
          AND ts >= {tsFrom:DateTime64(3, 'UTC')} AND ts < {tsTo:DateTime64(3, 'UTC')}`
  const rawOfDay = `SELECT event_key, received_at, log_partition, log_offset, publisher_id, campaign_id, billable, toString(reason) AS reason${signed ? ', sign' : ''}
        ${ofDay}`
  const oncePerRecord = `LIMIT 1 BY event_key, log_partition, log_offset, billable, reason${signed ? ', sign' : ''}`
  const n = signed ? 'sum(sign)' : 'count()'
  const coreRs = await ch.query({
    query: `SELECT publisher_id, campaign_id, billable, reason, ${n} AS n FROM (${rawOfDay} ${oncePerRecord})
      GROUP BY publisher_id, campaign_id, billable, reason`,
    query_params: params,
    format: 'JSONEachRow',
  })
  // One acceptance is one envelope: the edge stamps its idempotency key and its receive time once,
  // and a produce it retries after the first attempt was stored but not acknowledged (a timeout, a
  // lost answer, the Spool's redelivery) writes that same envelope again. Every record of an
  // (event_key, received_at) after its first in log order is such a copy: core keeps it as
  // duplicate_delivery, and here it is taken out of the accepted count, by its own verdict. Only
  // keys with a duplicate_delivery record can have copies, so the window sorts those alone.
  const copiesRs = await ch.query({
    query: `SELECT publisher_id, campaign_id, billable, reason, ${n} AS n FROM (
        SELECT *, min((log_partition, log_offset)) OVER (PARTITION BY event_key, received_at) AS first_record FROM (
          ${rawOfDay}
            AND event_key IN (SELECT event_key ${ofDay} AND reason = 'duplicate_delivery')
          ${oncePerRecord}
        )
      )
      WHERE (log_partition, log_offset) != first_record
      GROUP BY publisher_id, campaign_id, billable, reason`,
    query_params: params,
    format: 'JSONEachRow',
  })
  // Accepted events core could not store as a verdict are kept in bad_rows with their reason
  // (sink_rejected, bad_envelope): still accepted, never billed, and named by their publisher. A copy
  // of one envelope (above) is a second record with the same payload.
  const badRs = await ch.query({
    query: `SELECT JSONExtractString(payload, 'event', 'publisherId') AS publisher_id, toString(reason) AS reason, count() AS records,
        uniqExact(payload, payload_original) AS n
      FROM (SELECT payload, payload_original, reason FROM ${db}.bad_rows
        WHERE log_topic = {topic:String} AND received_at >= {start:DateTime64(3, 'UTC')} AND received_at < {end:DateTime64(3, 'UTC')}
        LIMIT 1 BY log_partition, log_offset)
      GROUP BY publisher_id, reason`,
    query_params: { ...params, topic: EVENTS_TOPIC },
    format: 'JSONEachRow',
  })
  type Row = {
    edge: { received: number; accepted: number; rejected: number; duplicate: number; rejectedByReason: Record<string, number> }
    core: { accepted: number; billed: number; keptByReason: Record<string, number>; logCopies: number }
  }
  const pubs = new Map<string, Row>()
  const get = (id: string) => {
    let r = pubs.get(id)
    if (!r) {
      r = { edge: { received: 0, accepted: 0, rejected: 0, duplicate: 0, rejectedByReason: {} }, core: { accepted: 0, billed: 0, keptByReason: {}, logCopies: 0 } }
      pubs.set(id, r)
    }
    return r
  }
  for (const r of await edgeRs.json<Record<string, unknown>>()) {
    const row = get(String(r.publisher_id))
    row.edge.received = Number(r.received)
    row.edge.accepted = Number(r.accepted)
    row.edge.rejected = Number(r.rejected)
    row.edge.duplicate = Number(r.duplicate)
    for (const [k, v] of Object.entries((r.by_reason ?? {}) as Record<string, unknown>)) if (Number(v) !== 0) row.edge.rejectedByReason[k] = Number(v)
  }
  /** Adds `n` records of one verdict to core's side (a negative `n` takes copies out). */
  const countVerdict = (row: Row, r: Record<string, unknown>, n: number) => {
    row.core.accepted += n
    // Only booked campaigns bill: a row stored billable for any other campaign (written before the
    // processor checked campaigns) is shown kept as unknown_campaign, never billed.
    const booked = tenants.getCampaign(String(r.campaign_id)) !== undefined
    if (Number(r.billable) === 1 && booked) row.core.billed += n
    else {
      const reason = Number(r.billable) === 1 ? 'unknown_campaign' : String(r.reason) || 'unspecified'
      const kept = (row.core.keptByReason[reason] ?? 0) + n
      if (kept === 0) delete row.core.keptByReason[reason]
      else row.core.keptByReason[reason] = kept
    }
  }
  for (const r of await coreRs.json<Record<string, unknown>>()) {
    const n = Number(r.n)
    if (n !== 0) countVerdict(get(String(r.publisher_id)), r, n)
  }
  for (const r of await copiesRs.json<Record<string, unknown>>()) {
    const n = Number(r.n)
    if (n === 0) continue
    const row = get(String(r.publisher_id))
    countVerdict(row, r, -n)
    row.core.logCopies += n
  }
  for (const r of await badRs.json<Record<string, unknown>>()) {
    const n = Number(r.n)
    const row = get(String(r.publisher_id))
    row.core.accepted += n
    row.core.keptByReason[String(r.reason)] = (row.core.keptByReason[String(r.reason)] ?? 0) + n
    row.core.logCopies += Number(r.records) - n
  }
  const publishers = [...pubs.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([publisherId, r]) => {
      const edgeUnbalanced = r.edge.received - (r.edge.accepted + r.edge.rejected + r.edge.duplicate)
      const inFlightOrMissing = r.edge.accepted - r.core.accepted
      return { publisherId, ...r, differences: { edgeUnbalanced, inFlightOrMissing }, balanced: edgeUnbalanced === 0 && inFlightOrMissing === 0 }
    })
  return { day, balanced: publishers.every((p) => p.balanced), publishers }
}

export function registerReportRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const clock = deps.clock ?? Date.now

  app.openapi(reconcileRoute, async (c) => {
    requireAdmin(c)
    const { day } = c.req.valid('param')
    refuseFutureDay(day, clock())
    // The stream side reads the hourly rollup; the explanations re-run the final join on raw events.
    refuseBeyondRetention(deps, 'hourly_rollups', dayReach(day), clock(), `the reconcile report of ${day}`)
    refuseBeyondRetention(deps, 'events_raw', dayReach(day, LOOK_AROUND_MS), clock(), `the reconcile report of ${day}`)
    return c.json(await reconcileReport(deps, day, clock()), 200)
  })

  app.openapi(accountingRoute, async (c) => {
    requireAdmin(c)
    const { day } = c.req.valid('query')
    refuseFutureDay(day, clock())
    refuseBeyondRetention(deps, 'hourly_rollups', dayReach(day), clock(), `the accounting report of ${day}`)
    refuseBeyondRetention(deps, 'bad_rows', dayReach(day), clock(), `the accounting report of ${day}`)
    refuseBeyondRetention(deps, 'events_raw', dayReach(day, ACCOUNTING_TS_LOOKBACK_MS), clock(), `the accounting report of ${day}`)
    return c.json(await accountingReport(deps, day), 200)
  })
}
