import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { addDays, dayOf } from '../../billing/days.js'
import { STREAM_MODEL, type Job } from '../../billing/jobs.js'
import { viewabilityRate, type SnapshotLine, type SnapshotVersion } from '../../billing/snapshots.js'
import { reasonFor } from '../../billing/version-reason.js'
import { csvField } from '../../billing/csv.js'
import { LOOK_AROUND_MS } from '../../billing/final-join.js'
import type { PrincipalKind } from '../../tenants/tenant-store.js'
import {
  type ResolvedApiDeps,
  type ApiEnv,
  bearerSecurity,
  dayParam,
  dayReach,
  idParam,
  beyondRetention,
  refuseBeyondRetention,
  refuseFutureDay,
  requireAdmin,
  requireAdvertiserAccess,
  requirePublisherAccess,
  ulidParam,
} from '../context.js'
import { ApiError, errorResponses } from '../errors.js'

export const JobSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['billing', 'reprocess']),
    status: z.enum(['queued', 'running', 'done', 'failed']),
    progress: z.number().min(0).max(1),
    days: z.array(z.string()),
    modelVersion: z.string(),
    attributionVersion: z.string().optional(),
    reason: z.string(),
    createdAt: z.number().int(),
    startedAt: z.number().int().optional(),
    finishedAt: z.number().int().optional(),
    error: z.string().optional(),
    errorReason: z.string().optional().openapi({ description: 'Failed: the reason code of the failure, e.g. unknown_reference for an IVT model or attribution rule version no longer registered.' }),
    versions: z.record(z.string(), z.number().int()).openapi({ description: 'Snapshot version written per day.' }),
    promotedVersions: z.record(z.string(), z.number().int()).optional(),
    events: z
      .object({ scored: z.number().int(), total: z.number().int() })
      .optional()
      .openapi({ description: 'Raw events scored by the model so far, of the events in the range (a reprocess, or a billing close keeping a promoted model).' }),
    kept: z
      .record(z.string(), z.object({ modelVersion: z.string(), attributionVersion: z.string().optional(), from: z.number().int() }))
      .optional()
      .openapi({ description: 'Billing: per day whose latest final version came from a promoted reprocess, the IVT model and attribution rules the close kept from final version `from` instead of the stream model.' }),
  })
  .openapi('Job')

export function jobView(job: Job): z.infer<typeof JobSchema> {
  // `marks`: the schedule's bookkeeping of what each version read (billing/jobs.ts), not part of the job's view.
  const { requestedBy: _by, promotedAt: _at, promotedBy: _pby, promoteRequest: _req, marks: _marks, ...rest } = job
  return rest
}

const VersionSchema = z
  .object({
    version: z.number().int(),
    status: z.enum(['final', 'candidate']),
    jobId: z.string(),
    modelVersion: z.string(),
    createdAt: z.number().int(),
    reason: z.string().openapi({ description: 'Why this version was written: scheduled close, close after the lateness horizon, re-close for late events, promotion, manual.' }),
    supersedes: z.number().int().nullable().openapi({ description: 'The final version this one replaced.' }),
    receivedBefore: z.number().int().openapi({ description: 'Events received at or after this time (epoch ms) are not in this version; a later version takes them.' }),
    complete: z.boolean().openapi({ description: 'Written after the watermark passed the day end plus the lateness horizon: no event of the day is expected any more.' }),
  })
  .openapi('SnapshotVersion')

/** A version as `viewer` reads it (its reason through reasonFor: a tenant never reads operators' text or other tenants' volume). */
const versionView = (viewer: PrincipalKind) => (v: SnapshotVersion) => ({
  version: v.version, status: v.status, jobId: v.jobId, modelVersion: v.modelVersion, createdAt: v.createdAt,
  reason: reasonFor(viewer, v.reason), supersedes: v.supersedes > 0 ? v.supersedes : null, receivedBefore: v.receivedBefore, complete: v.complete,
})

const Adjustment = z
  .object({
    campaignId: z.string(),
    impressions: z.number().int(),
    clicks: z.number().int(),
    ivtImpressions: z.number().int(),
    ivtClicks: z.number().int(),
    duplicates: z.number().int(),
    orphanClicks: z.number().int(),
    spendMicros: z.number().int(),
  })
  .openapi('BillingAdjustment', { description: 'This version minus the version it supersedes, per campaign (only campaigns that changed).' })

const ADJUSTED = ['impressions', 'clicks', 'ivtImpressions', 'ivtClicks', 'duplicates', 'orphanClicks', 'spendMicros'] as const

/** Per campaign, `next - prev` of every billed figure; campaigns with no change are left out. */
export function adjustments(prev: ReturnType<typeof perCampaign>, next: ReturnType<typeof perCampaign>): z.infer<typeof Adjustment>[] {
  const a = new Map(prev.map((l) => [l.campaignId, l]))
  const b = new Map(next.map((l) => [l.campaignId, l]))
  const out: z.infer<typeof Adjustment>[] = []
  for (const campaignId of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const row = { campaignId } as z.infer<typeof Adjustment>
    for (const k of ADJUSTED) row[k] = (b.get(campaignId)?.[k] ?? 0) - (a.get(campaignId)?.[k] ?? 0)
    if (ADJUSTED.some((k) => row[k] !== 0)) out.push(row)
  }
  return out
}

const CampaignBilling = z
  .object({
    campaignId: z.string(),
    pricingModel: z.string(),
    priceMicros: z.number().int(),
    impressions: z.number().int(),
    measuredImpressions: z.number().int().openapi({ description: 'Billable impressions whose viewability was measured.' }),
    viewableImpressions: z.number().int().openapi({ description: 'Measured viewable billable impressions; a vcpm campaign is billed on these.' }),
    viewabilityRate: z.number().nullable().openapi({ description: 'viewableImpressions / measuredImpressions; null when nothing was measured.' }),
    clicks: z.number().int(),
    ivtImpressions: z.number().int(),
    ivtClicks: z.number().int(),
    ivtByReason: z.record(z.string(), z.number().int()),
    duplicates: z.number().int(),
    orphanClicks: z.number().int(),
    spendMicros: z.number().int(),
  })
  .openapi('CampaignBilling')

/** Sums snapshot lines (one per campaign and publisher) into one line per campaign. */
export function perCampaign(lines: SnapshotLine[]): z.infer<typeof CampaignBilling>[] {
  const out = new Map<string, z.infer<typeof CampaignBilling>>()
  for (const l of lines) {
    let c = out.get(l.campaignId)
    if (!c) {
      c = {
        campaignId: l.campaignId, pricingModel: l.pricingModel, priceMicros: l.priceMicros, impressions: 0, measuredImpressions: 0,
        viewableImpressions: 0, viewabilityRate: null, clicks: 0, ivtImpressions: 0, ivtClicks: 0, ivtByReason: {}, duplicates: 0, orphanClicks: 0,
        spendMicros: 0,
      }
      out.set(l.campaignId, c)
    }
    c.impressions += l.impressions
    c.measuredImpressions += l.measuredImpressions
    c.viewableImpressions += l.viewableImpressions
    c.viewabilityRate = viewabilityRate(c.measuredImpressions, c.viewableImpressions)
    c.clicks += l.clicks
    c.ivtImpressions += l.ivtImpressions
    c.ivtClicks += l.ivtClicks
    for (const [r, n] of Object.entries(l.ivtByReason)) c.ivtByReason[r] = (c.ivtByReason[r] ?? 0) + n
    c.duplicates += l.duplicates
    c.orphanClicks += l.orphanClicks
    c.spendMicros += l.spendMicros
  }
  return [...out.values()]
}

const submitJobRoute = createRoute({
  method: 'post',
  path: '/v1/billing/jobs',
  summary: 'Recompute a UTC day from raw events into a new final snapshot version (admin key)',
  security: bearerSecurity,
  request: { body: { content: { 'application/json': { schema: z.object({ day: dayParam }) } }, required: true } },
  responses: {
    202: { description: 'Queued', content: { 'application/json': { schema: JobSchema } } },
    ...errorResponses(400, 401, 403, 410, 421),
  },
})

const getJobRoute = createRoute({
  method: 'get',
  path: '/v1/billing/jobs/{id}',
  summary: 'A billing or reprocess job: status and progress (admin key)',
  security: bearerSecurity,
  request: { params: z.object({ id: ulidParam.openapi({ param: { name: 'id', in: 'path' }, example: '01JD0000000000000000000000' }) }) },
  responses: {
    200: { description: 'The job', content: { 'application/json': { schema: JobSchema } } },
    ...errorResponses(400, 401, 403, 404),
  },
})

const listJobsRoute = createRoute({
  method: 'get',
  path: '/v1/billing/jobs',
  summary: 'Recent billing and reprocess jobs, newest first (admin key)',
  security: bearerSecurity,
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(500).optional().openapi({ description: 'Default 50.' }) }) },
  responses: {
    200: { description: 'Jobs', content: { 'application/json': { schema: z.object({ jobs: z.array(JobSchema) }) } } },
    ...errorResponses(400, 401, 403),
  },
})

const dailyRoute = createRoute({
  method: 'get',
  path: '/v1/billing/daily',
  summary: "An advertiser's final billing for a UTC day (latest final snapshot version)",
  security: bearerSecurity,
  request: {
    query: z.object({
      advertiserId: idParam.optional().openapi({ description: "Required with an admin key; an advertiser key defaults to its own.", example: 'adv_demo' }),
      day: dayParam,
    }),
  },
  responses: {
    200: {
      description: 'Billing; `final: false` when the day has no final snapshot yet',
      content: {
        'application/json': {
          schema: z
            .object({
              advertiserId: z.string(),
              day: z.string(),
              final: z.boolean(),
              version: z.number().int().nullable(),
              modelVersion: z.string().nullable(),
              createdAt: z.number().int().nullable(),
              complete: z.boolean().openapi({ description: 'The shown version was written after the watermark passed the day end plus the lateness horizon.' }),
              finalAt: z.number().int().nullable().openapi({ description: 'When the shown version became final (epoch ms).' }),
              reason: z.string().nullable().openapi({ description: 'Why the shown version was written.' }),
              supersedes: z.number().int().nullable().openapi({ description: 'The final version the shown one replaced.' }),
              receivedBefore: z.number().int().nullable().openapi({ description: 'Events received at or after this time are not in the shown version yet.' }),
              adjustments: z.array(Adjustment),
              versions: z.array(VersionSchema),
              campaigns: z.array(CampaignBilling),
              totals: z.object({
                impressions: z.number().int(),
                measuredImpressions: z.number().int(),
                viewableImpressions: z.number().int(),
                clicks: z.number().int(),
                spendMicros: z.number().int(),
              }),
            })
            .openapi('DailyBilling'),
        },
      },
    },
    ...errorResponses(400, 401, 403, 404),
  },
})

const daysRoute = createRoute({
  method: 'get',
  path: '/v1/billing/days',
  summary: 'Snapshot versions per UTC day over a range (at most 92 days)',
  security: bearerSecurity,
  request: { query: z.object({ from: dayParam, to: dayParam }) },
  responses: {
    200: {
      description: 'Days with their versions',
      content: {
        'application/json': {
          schema: z.object({ days: z.array(z.object({ day: z.string(), final: z.boolean(), versions: z.array(VersionSchema) })) }),
        },
      },
    },
    ...errorResponses(400, 401, 403),
  },
})

const settlementRoute = createRoute({
  method: 'get',
  path: '/v1/settlement/daily',
  summary: "What a publisher is owed for a UTC day, per campaign (JSON, or CSV with Accept: text/csv or format=csv)",
  security: bearerSecurity,
  request: {
    query: z.object({
      publisherId: idParam.optional().openapi({ description: 'Required with an admin key; a publisher key defaults to its own.', example: 'pub_demo' }),
      day: dayParam,
      format: z.enum(['json', 'csv']).optional(),
    }),
  },
  responses: {
    200: {
      description: 'Settlement lines from the latest final snapshot',
      content: {
        'application/json': {
          schema: z
            .object({
              publisherId: z.string(),
              day: z.string(),
              final: z.boolean(),
              version: z.number().int().nullable(),
              lines: z.array(
                z.object({
                  campaignId: z.string(),
                  advertiserId: z.string(),
                  pricingModel: z.string(),
                  priceMicros: z.number().int(),
                  impressions: z.number().int(),
                  viewableImpressions: z.number().int().openapi({ description: 'Measured viewable impressions (what a vcpm line is paid on).' }),
                  clicks: z.number().int(),
                  ivtImpressions: z.number().int(),
                  ivtClicks: z.number().int(),
                  amountMicros: z.number().int(),
                }),
              ),
              totalMicros: z.number().int(),
            })
            .openapi('Settlement'),
        },
        'text/csv': { schema: z.string() },
      },
    },
    ...errorResponses(400, 401, 403, 404),
  },
})

const CSV_COLUMNS = ['day', 'version', 'publisher_id', 'campaign_id', 'advertiser_id', 'pricing_model', 'price_micros', 'impressions', 'clicks', 'ivt_impressions', 'ivt_clicks', 'amount_micros'] as const

export function registerBillingRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const { billing, tenants } = deps
  const clock = deps.clock ?? Date.now

  app.openapi(submitJobRoute, async (c) => {
    const admin = requireAdmin(c)
    const { day } = c.req.valid('json')
    refuseFutureDay(day, clock())
    // A close recomputes the day from raw events (and the days around it): past their retention it
    // would supersede the invoiced version with what is left.
    refuseBeyondRetention(deps, 'events_raw', dayReach(day, LOOK_AROUND_MS), clock(), `closing ${day}`)
    // A day whose final was promoted from a reprocess is closed again with that model, whose
    // decisions are written with their events' times: past their retention they would be removed
    // as written, and the close would count the day's invalid traffic as clean.
    // (The snapshots are read only for such a day: a close within that retention needs no look.)
    if (beyondRetention(deps, 'ivt_decisions', dayReach(day), clock())) {
      const latest = await billing.snapshots.latestFinal(day)
      if (latest !== undefined && latest.modelVersion !== STREAM_MODEL) {
        refuseBeyondRetention(deps, 'ivt_decisions', dayReach(day), clock(), `closing ${day} with its promoted IVT model ${latest.modelVersion}`)
      }
    }
    const job = await billing.submitBilling(day, admin.id)
    c.header('Location', `/v1/billing/jobs/${job.id}`)
    return c.json(jobView(job), 202)
  })

  app.openapi(listJobsRoute, (c) => {
    requireAdmin(c)
    return c.json({ jobs: billing.list(c.req.valid('query').limit ?? 50).map(jobView) }, 200)
  })

  app.openapi(getJobRoute, (c) => {
    requireAdmin(c)
    const job = billing.get(c.req.valid('param').id)
    if (!job) throw new ApiError('not_found', 'no such job')
    return c.json(jobView(job), 200)
  })

  app.openapi(dailyRoute, async (c) => {
    const q = c.req.valid('query')
    const advertiserId = requireAdvertiserAccess(c, tenants, q.advertiserId)
    refuseFutureDay(q.day, clock())
    const versions = await billing.snapshots.versions(q.day)
    const latest = versions.filter((v) => v.status === 'final').at(-1)
    const campaigns = latest ? perCampaign(await billing.snapshots.lines(q.day, latest.version, { advertiserId })) : []
    const previous = latest && latest.supersedes > 0 ? perCampaign(await billing.snapshots.lines(q.day, latest.supersedes, { advertiserId })) : undefined
    const totals = campaigns.reduce(
      (t, x) => ({
        impressions: t.impressions + x.impressions,
        measuredImpressions: t.measuredImpressions + x.measuredImpressions,
        viewableImpressions: t.viewableImpressions + x.viewableImpressions,
        clicks: t.clicks + x.clicks,
        spendMicros: t.spendMicros + x.spendMicros,
      }),
      { impressions: 0, measuredImpressions: 0, viewableImpressions: 0, clicks: 0, spendMicros: 0 },
    )
    return c.json(
      {
        advertiserId,
        day: q.day,
        final: latest !== undefined,
        version: latest?.version ?? null,
        modelVersion: latest?.modelVersion ?? null,
        createdAt: latest?.createdAt ?? null,
        complete: latest?.complete ?? false,
        finalAt: latest?.createdAt ?? null,
        reason: latest ? reasonFor(c.get('principal').kind, latest.reason) : null,
        supersedes: latest && latest.supersedes > 0 ? latest.supersedes : null,
        receivedBefore: latest?.receivedBefore ?? null,
        adjustments: previous ? adjustments(previous, campaigns) : [],
        versions: versions.filter((v) => v.status === 'final').map(versionView(c.get('principal').kind)),
        campaigns,
        totals,
      },
      200,
    )
  })

  app.openapi(daysRoute, async (c) => {
    const p = c.get('principal')
    if (p.kind === 'publisher') throw new ApiError('forbidden', 'a publisher key reads its settlement instead')
    const { from, to } = c.req.valid('query')
    if (from > to) throw new ApiError('invalid_range', 'from must not be after to')
    if (addDays(from, 92) <= to) throw new ApiError('invalid_range', 'at most 92 days at a time')
    refuseFutureDay(from, clock())
    const all = await billing.snapshots.versionsInRange(from, to < dayOf(clock()) ? to : dayOf(clock()))
    const byDay = new Map<string, SnapshotVersion[]>()
    for (const v of all) byDay.set(v.day, [...(byDay.get(v.day) ?? []), v])
    const days = [...byDay.entries()].map(([day, vs]) => ({
      day,
      final: vs.some((v) => v.status === 'final'),
      versions: vs.filter((v) => v.status === 'final').map(versionView(p.kind)),
    }))
    return c.json({ days }, 200)
  })

  app.openapi(settlementRoute, async (c) => {
    const q = c.req.valid('query')
    const publisherId = requirePublisherAccess(c, tenants, q.publisherId)
    refuseFutureDay(q.day, clock())
    const latest = await billing.snapshots.latestFinal(q.day)
    const lines = latest ? await billing.snapshots.lines(q.day, latest.version, { publisherId }) : []
    const out = lines.map((l) => ({
      campaignId: l.campaignId,
      advertiserId: l.advertiserId,
      pricingModel: l.pricingModel,
      priceMicros: l.priceMicros,
      impressions: l.impressions,
      viewableImpressions: l.viewableImpressions,
      clicks: l.clicks,
      ivtImpressions: l.ivtImpressions,
      ivtClicks: l.ivtClicks,
      amountMicros: l.spendMicros,
    }))
    const wantsCsv = q.format === 'csv' || (q.format === undefined && /\btext\/csv\b/i.test(c.req.header('accept') ?? ''))
    if (wantsCsv) {
      const rows = out.map((l) =>
        [q.day, latest?.version ?? '', publisherId, l.campaignId, l.advertiserId, l.pricingModel, l.priceMicros, l.impressions, l.clicks, l.ivtImpressions, l.ivtClicks, l.amountMicros]
          .map(csvField)
          .join(','),
      )
      c.header('Content-Type', 'text/csv; charset=utf-8')
      c.header('Content-Disposition', `attachment; filename="settlement-${publisherId}-${q.day}.csv"`)
      c.header('X-Snapshot-Final', latest ? 'true' : 'false')
      return c.body([CSV_COLUMNS.join(','), ...rows].join('\r\n') + '\r\n', 200)
    }
    return c.json(
      { publisherId, day: q.day, final: latest !== undefined, version: latest?.version ?? null, lines: out, totalMicros: out.reduce((s, l) => s + l.amountMicros, 0) },
      200,
    )
  })
}
