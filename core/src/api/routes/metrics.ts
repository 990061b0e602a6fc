import { chTime } from '@adc/schemas'
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { spendMicros, viewabilityRate } from '../../billing/snapshots.js'
import { DEFAULT_RETENTION } from '../../clickhouse/retention.js'
import { type ResolvedApiDeps, type ApiEnv, bearerSecurity, idParam, parseTime, requireCampaignAccess, retentionDays, timeParam } from '../context.js'
import { ApiError, errorResponses } from '../errors.js'
import { type RollupPlan, planRollupRead, retainedRange } from '../rollup-plan.js'

/** Dimension names of the API and their rollup columns (the only names ever put into SQL). */
const DIMENSIONS = { ad: 'ad_id', publisher: 'publisher_id', geo: 'geo', device: 'device' } as const
type Dimension = keyof typeof DIMENSIONS

const MINUTE_RANGE_MAX_MS = 7 * 86_400_000
const HOUR_RANGE_MAX_MS = 92 * 86_400_000
/** Bounds every API query in its own SQL (never as a per-call setting, which chDB would keep for the session). */
export const QUERY_LIMIT = 'SETTINGS max_execution_time = 20'
const EARLIEST = Date.parse('2000-01-01T00:00:00Z')
const LATEST = Date.parse('2100-01-01T00:00:00Z')

const Counts = {
  impressions: z.number().int(),
  clicks: z.number().int(),
  ctr: z.number().openapi({ description: 'clicks / impressions (0 when there are no impressions)' }),
  uniques: z.number().int().openapi({ description: 'Approximate distinct users (HLL, uniqMerge).' }),
  spendMicros: z.number().int().nullable().openapi({
    description: 'Provisional spend from the campaign price; null if the price is unknown. In `totals`, priced as the bill prices it: per UTC day and publisher, each rounded down (whole days show what they are billed); a series point prices its own bucket.',
  }),
  ivtImpressions: z.number().int(),
  ivtClicks: z.number().int(),
  measuredImpressions: z.number().int().openapi({ description: 'Billable impressions whose viewability was measured (tag: IAB/MRC 50 % for 1 s; SDKs: their own).' }),
  viewableImpressions: z.number().int().openapi({ description: 'Measured impressions that were viewable; what a vCPM campaign pays for.' }),
  viewabilityRate: z.number().nullable().openapi({ description: 'viewableImpressions / measuredImpressions; null when nothing was measured.' }),
}

const SeriesPoint = z
  .object({
    t: z.number().int().openapi({ description: 'Bucket start, epoch ms (UTC).' }),
    ad: z.string().optional(),
    publisher: z.string().optional(),
    geo: z.string().optional(),
    device: z.string().optional(),
    ...Counts,
  })
  .openapi('RealtimePoint')

const Freshness = z
  .object({
    lastReceivedAt: z.number().int().nullable().openapi({ description: 'Edge receive time of the newest accepted event in the rollups.' }),
    lagMs: z.number().int().nullable().openapi({ description: 'Now minus lastReceivedAt.' }),
    asOf: z.number().int(),
  })
  .openapi('Freshness')

const RealtimeResponse = z
  .object({
    campaignId: z.string(),
    from: z.number().int().openapi({ description: 'Start of the range the numbers cover: the asked `from`, or its hour when the minute rollups no longer hold it.' }),
    to: z.number().int().openapi({ description: 'End (exclusive) of the range the numbers cover: the asked `to`, or the end of its hour likewise.' }),
    granularity: z.enum(['minute', 'hour']).openapi({
      description:
        'The buckets of `series`: as asked, except that a minute request reaching before the minute rollups retention (RETENTION_MINUTE_ROLLUP_DAYS) is served per hour from the hourly rollup.',
    }),
    dimensions: z.array(z.enum(['ad', 'publisher', 'geo', 'device'])),
    provisional: z.literal(true),
    freshness: Freshness,
    pricing: z.object({ model: z.enum(['cpm', 'cpc', 'vcpm']), priceMicros: z.number().int() }).nullable(),
    totals: z.object(Counts),
    ivtByReason: z.array(z.object({ reason: z.string(), eventType: z.string(), events: z.number().int() })),
    series: z.array(SeriesPoint),
    truncated: z.boolean(),
  })
  .openapi('Realtime')

const realtimeRoute = createRoute({
  method: 'get',
  path: '/v1/metrics/realtime',
  summary: 'Provisional near-real-time metrics from the rollups (per minute while the minute rollups hold the range, else per hour)',
  security: bearerSecurity,
  request: {
    query: z.object({
      campaignId: idParam.openapi({ example: 'cmp_demo_cpm' }),
      from: timeParam.optional().openapi({ description: 'Start (inclusive). Default: `to` minus one hour.', example: '2026-11-20T00:00:00Z' }),
      to: timeParam.optional().openapi({ description: 'End (exclusive). Default: now.', example: '2026-11-20T06:00:00Z' }),
      dimensions: z
        .string()
        .max(64)
        .regex(/^((ad|publisher|geo|device)(,(ad|publisher|geo|device))*)?$/, 'must be a comma-separated subset of ad,publisher,geo,device')
        .optional()
        .openapi({ example: 'geo,device' }),
      granularity: z.enum(['minute', 'hour']).optional().openapi({ description: 'Default minute.' }),
      limit: z.coerce.number().int().min(1).max(50_000).optional().openapi({ description: 'Maximum series rows. Default 10000.' }),
    }),
  },
  responses: {
    200: { description: 'Metrics per bucket (and dimensions)', content: { 'application/json': { schema: RealtimeResponse } } },
    ...errorResponses(400, 401, 403, 404, 410),
  },
})

const latencyRoute = createRoute({
  method: 'get',
  path: '/v1/metrics/campaigns/{id}/latency',
  summary: 'Ingest lag and freshness of a campaign',
  security: bearerSecurity,
  request: {
    params: z.object({ id: idParam.openapi({ param: { name: 'id', in: 'path' }, example: 'cmp_demo_cpm' }) }),
    query: z.object({
      windowMinutes: z.coerce.number().int().min(1).max(1440).optional().openapi({ description: 'Look-back window. Default 60.' }),
    }),
  },
  responses: {
    200: {
      description: 'Lag quantiles over the window',
      content: {
        'application/json': {
          schema: z
            .object({
              campaignId: z.string(),
              windowMinutes: z.number().int(),
              events: z.number().int(),
              freshness: Freshness,
              ingestLagMs: z.object({ p50: z.number().nullable(), p99: z.number().nullable() }).openapi({ description: 'processed_at - received_at' }),
              ingestP95Ms: z.number().nullable().openapi({ description: '95th percentile of processed_at - received_at over the window (edge receipt to ClickHouse); null without events.' }),
              pipelineLagSeconds: z.number().nullable().openapi({
                description: 'How far the counts trail the present: now minus the edge receive time of the newest event in the rollups, in seconds; null before any event.',
              }),
              eventDelayMs: z.object({ p50: z.number().nullable(), p99: z.number().nullable() }).openapi({ description: 'received_at - ts' }),
            })
            .openapi('Latency'),
        },
      },
    },
    ...errorResponses(400, 401, 403, 404),
  },
})

/** RETENTION_MINUTE_ROLLUP_DAYS's default (clickhouse/retention.ts), when the app is given none. */
const DEFAULT_MINUTE_ROLLUP_DAYS = DEFAULT_RETENTION.minuteRollupDays

/**
 * The SELECTs of a plan's pieces joined by UNION ALL: whole hours from the hourly table, the rest
 * from the minute table, each bucketed as the plan answers. Adds each piece's bounds to `params`.
 */
function pieces(
  plan: RollupPlan,
  params: Record<string, string>,
  tables: { hour: string; minute: string },
  select: (table: string, bucket: string, where: string) => string,
): string {
  const out: string[] = []
  const where = (time: string, i: number, [a, b]: [number, number]) => {
    params[`f${i}`] = chTime(a)
    params[`t${i}`] = chTime(b)
    return `campaign_id = {c:String} AND ${time} >= {f${i}:DateTime64(3, 'UTC')} AND ${time} < {t${i}:DateTime64(3, 'UTC')}`
  }
  if (plan.hours) out.push(select(tables.hour, 'hour', where('hour', 0, plan.hours)))
  const bucket = plan.granularity === 'minute' ? 'minute' : 'toStartOfHour(minute)'
  plan.minutes.forEach((range, i) => out.push(select(tables.minute, bucket, where('minute', i + 1, range))))
  return out.join(' UNION ALL ')
}

export function registerMetricsRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const { clickhouse: ch, database: db, tenants } = deps
  const clock = deps.clock ?? Date.now

  async function freshness(campaignId: string) {
    const rs = await ch.query({
      query: `SELECT toUnixTimestamp64Milli(max(last_received_at)) AS last FROM ${db}.rollup_hour WHERE campaign_id = {c:String} ${QUERY_LIMIT}`,
      query_params: { c: campaignId },
      format: 'JSONEachRow',
    })
    const [row] = await rs.json<{ last: number | string }>()
    const last = Number(row?.last ?? 0)
    const now = clock()
    return { lastReceivedAt: last > 0 ? last : null, lagMs: last > 0 ? Math.max(0, now - last) : null, asOf: now }
  }

  app.openapi(realtimeRoute, async (c) => {
    const q = c.req.valid('query')
    const campaign = requireCampaignAccess(c, tenants, q.campaignId)
    const now = clock()
    const to = q.to !== undefined ? parseTime(q.to)! : now
    const from = q.from !== undefined ? parseTime(q.from)! : to - 3_600_000
    const granularity = q.granularity ?? 'minute'
    if (from < EARLIEST || to > LATEST) throw new ApiError('invalid_range', 'from and to must lie between 2000-01-01 and 2100-01-01')
    if (from >= to) throw new ApiError('invalid_range', 'from must be before to')
    if (from > now) throw new ApiError('invalid_range', 'from is in the future')
    const max = granularity === 'minute' ? MINUTE_RANGE_MAX_MS : HOUR_RANGE_MAX_MS
    if (to - from > max) {
      throw new ApiError('invalid_range', `a ${granularity} query spans at most ${max / 86_400_000} days; use granularity=hour or a shorter range`)
    }
    const dims = [...new Set((q.dimensions ?? '').split(',').filter(Boolean))] as Dimension[]
    const limit = q.limit ?? 10_000
    const dimCols = dims.map((d) => DIMENSIONS[d])
    // Before the hourly rollups' retention nothing of a range is kept: the answer covers the part
    // that is (its `from` says where that starts), and a range wholly before it is refused.
    const kept = retainedRange(from, to, now, retentionDays(deps, 'hourly_rollups'))
    if (!kept) throw new ApiError('beyond_retention', `nothing before ${new Date(to).toISOString()} is kept any more: the hourly rollups keep ${retentionDays(deps, 'hourly_rollups')} days (RETENTION_HOURLY_ROLLUP_DAYS)`)
    const plan = planRollupRead({ from: kept.from, to: kept.to, granularity, now, minuteRollupDays: deps.minuteRollupDays ?? DEFAULT_MINUTE_ROLLUP_DAYS })
    const params: Record<string, string> = { c: q.campaignId }
    const counters = `impressions, clicks, ivt_impressions, ivt_clicks, uniques, measured_impressions, viewable_impressions`
    const rollups = pieces(plan, params, { hour: 'rollup_hour', minute: 'rollup_minute' }, (table, bucket, where) =>
      `SELECT toUnixTimestamp(${bucket}) * 1000 AS t${dimCols.map((d) => `, ${d}`).join('')}, ${counters} FROM ${db}.${table} WHERE ${where}`,
    )
    const ivtRollups = pieces(plan, params, { hour: 'rollup_ivt_hour', minute: 'rollup_ivt_minute' }, (table, _bucket, where) =>
      `SELECT reason, event_type, events FROM ${db}.${table} WHERE ${where}`,
    )
    // Uniques are HLL states: merged once over both tables' rows, never added up per table.
    const sums = `sum(impressions) AS impressions, sum(clicks) AS clicks, sum(ivt_impressions) AS ivt_impressions,
      sum(ivt_clicks) AS ivt_clicks, uniqMerge(uniques) AS uniques, sum(measured_impressions) AS measured_impressions,
      sum(viewable_impressions) AS viewable_impressions`
    const groupCols = ['t', ...dimCols].join(', ')
    const seriesRs = await ch.query({
      query: `SELECT t${dimCols.map((d) => `, ${d}`).join('')}, ${sums} FROM (${rollups})
        GROUP BY ${groupCols} ORDER BY ${groupCols} LIMIT ${limit + 1} ${QUERY_LIMIT}`,
      query_params: params,
      format: 'JSONEachRow',
    })
    const totalsRs = await ch.query({
      query: `SELECT ${sums} FROM (${rollups}) ${QUERY_LIMIT}`,
      query_params: params,
      format: 'JSONEachRow',
    })
    // The totals' spend is priced as the bill prices it (billing/snapshots.ts buildLines): one line per
    // UTC day and publisher, each rounded down, so a range of whole days shows what they are billed
    // (rounding the range's counts once gave a micro per line more).
    const lineRollups = pieces(plan, params, { hour: 'rollup_hour', minute: 'rollup_minute' }, (table, bucket, where) =>
      `SELECT toDate(${bucket}, 'UTC') AS d, publisher_id, impressions, clicks, viewable_impressions FROM ${db}.${table} WHERE ${where}`,
    )
    const linesRs = await ch.query({
      query: `SELECT sum(impressions) AS impressions, sum(clicks) AS clicks, sum(viewable_impressions) AS viewable_impressions
        FROM (${lineRollups}) GROUP BY d, publisher_id ${QUERY_LIMIT}`,
      query_params: params,
      format: 'JSONEachRow',
    })
    const ivtRs = await ch.query({
      query: `SELECT reason, event_type, sum(events) AS events FROM (${ivtRollups})
        GROUP BY reason, event_type HAVING events != 0 ORDER BY events DESC, reason, event_type ${QUERY_LIMIT}`,
      query_params: params,
      format: 'JSONEachRow',
    })
    const rows = await seriesRs.json<Record<string, unknown>>()
    const [tot] = await totalsRs.json<Record<string, unknown>>()
    const ivt = await ivtRs.json<Record<string, unknown>>()
    const lineSpend = (await linesRs.json<Record<string, unknown>>()).reduce(
      (s, l) => s + spendMicros(campaign.pricing.model, campaign.pricing.priceMicros, Number(l.impressions), Number(l.clicks), Number(l.viewable_impressions)),
      0,
    )
    const counts = (r: Record<string, unknown> | undefined) => {
      const impressions = Number(r?.impressions ?? 0)
      const clicks = Number(r?.clicks ?? 0)
      const measured = Number(r?.measured_impressions ?? 0)
      const viewable = Number(r?.viewable_impressions ?? 0)
      return {
        impressions,
        clicks,
        ctr: impressions > 0 ? clicks / impressions : 0,
        uniques: Number(r?.uniques ?? 0),
        spendMicros: spendMicros(campaign.pricing.model, campaign.pricing.priceMicros, impressions, clicks, viewable),
        ivtImpressions: Number(r?.ivt_impressions ?? 0),
        ivtClicks: Number(r?.ivt_clicks ?? 0),
        measuredImpressions: measured,
        viewableImpressions: viewable,
        viewabilityRate: viewabilityRate(measured, viewable),
      }
    }
    const truncated = rows.length > limit
    const series = rows.slice(0, limit).map((r) => {
      const point: z.infer<typeof SeriesPoint> = { t: Number(r.t), ...counts(r) }
      for (const d of dims) point[d] = String(r[DIMENSIONS[d]])
      return point
    })
    return c.json(
      {
        campaignId: q.campaignId,
        from: plan.from,
        to: plan.to,
        granularity: plan.granularity,
        dimensions: dims,
        provisional: true as const,
        freshness: await freshness(q.campaignId),
        pricing: campaign.pricing,
        totals: { ...counts(tot), spendMicros: lineSpend },
        ivtByReason: ivt.map((r) => ({ reason: String(r.reason), eventType: String(r.event_type), events: Number(r.events) })),
        series,
        truncated,
      },
      200,
    )
  })

  app.openapi(latencyRoute, async (c) => {
    const { id } = c.req.valid('param')
    const { windowMinutes = 60 } = c.req.valid('query')
    requireCampaignAccess(c, tenants, id)
    const now = clock()
    const since = now - windowMinutes * 60_000
    const rs = await ch.query({
      query: `SELECT count() AS n,
          quantiles(0.5, 0.99, 0.95)(toUnixTimestamp64Milli(processed_at) - toUnixTimestamp64Milli(received_at)) AS ingest,
          quantiles(0.5, 0.99)(toUnixTimestamp64Milli(received_at) - toUnixTimestamp64Milli(ts)) AS delay
        FROM ${db}.events_raw
        WHERE campaign_id = {c:String} AND ts >= {tsFrom:DateTime64(3, 'UTC')} AND received_at >= {since:DateTime64(3, 'UTC')} ${QUERY_LIMIT}`,
      query_params: { c: id, since: chTime(since), tsFrom: chTime(since - 86_400_000) },
      format: 'JSONEachRow',
    })
    const [row] = await rs.json<{ n: number | string; ingest: Array<number | string>; delay: Array<number | string> }>()
    const n = Number(row?.n ?? 0)
    const q = (arr: Array<number | string> | undefined, i: number) => (n > 0 && arr ? Math.round(Number(arr[i])) : null)
    const fresh = await freshness(id)
    return c.json(
      {
        campaignId: id,
        windowMinutes,
        events: n,
        freshness: fresh,
        ingestLagMs: { p50: q(row?.ingest, 0), p99: q(row?.ingest, 1) },
        ingestP95Ms: q(row?.ingest, 2),
        pipelineLagSeconds: fresh.lagMs === null ? null : Math.round(fresh.lagMs / 1000),
        eventDelayMs: { p50: q(row?.delay, 0), p99: q(row?.delay, 1) },
      },
      200,
    )
  })
}
