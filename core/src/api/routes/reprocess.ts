import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { addDays } from '../../billing/days.js'
import { BillingExecutorUnavailableError, JobStateError, type Job } from '../../billing/jobs.js'
import { type ResolvedApiDeps, type ApiEnv, bearerSecurity, dayParam, dayReach, refuseBeyondRetention, refuseFutureDay, requireAdmin, ulidParam } from '../context.js'
import { LOOK_AROUND_MS } from '../../billing/final-join.js'
import { ApiError, errorResponses } from '../errors.js'
import { JobSchema, jobView, perCampaign } from './billing.js'
import { IVT_MODELS } from '../../ivt/models/index.js'
import { ATTRIBUTION_RULES } from '../../rules/rules.js'

const MAX_DAYS = 31

const Figures = z.object({
  version: z.number().int(),
  impressions: z.number().int(),
  clicks: z.number().int(),
  ivtImpressions: z.number().int(),
  ivtClicks: z.number().int(),
  spendMicros: z.number().int(),
})

const Comparison = z
  .object({
    day: z.string(),
    campaignId: z.string(),
    current: Figures.nullable(),
    candidate: Figures.nullable(),
    delta: z.object({ impressions: z.number().int(), clicks: z.number().int(), ivtImpressions: z.number().int(), ivtClicks: z.number().int(), spendMicros: z.number().int() }),
  })
  .openapi('ReprocessComparison')

const idParams = z.object({ id: ulidParam.openapi({ param: { name: 'id', in: 'path' }, example: '01JD0000000000000000000000' }) })

const submitRoute = createRoute({
  method: 'post',
  path: '/v1/reprocess',
  summary: 'Score the stored raw events of UTC days with an IVT model version, in bounded batches, into candidate snapshots (admin key)',
  security: bearerSecurity,
  request: {
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z.object({
            from: dayParam,
            to: dayParam,
            reason: z.string().min(1).max(500),
            modelVersion: z
              .string()
              .regex(/^[A-Za-z0-9_.:\-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -')
              .openapi({ example: 'ivt-2026.12.1', description: `A registered IVT model (core/src/ivt/models): ${[...IVT_MODELS.keys()].join(', ')}.` }),
            attributionVersion: z
              .string()
              .regex(/^[A-Za-z0-9_.:\-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -')
              .optional()
              .openapi({ example: 'attr-2026.12.1', description: `Attribution windows to rebuild the days with (core/src/rules/rules.ts): ${[...ATTRIBUTION_RULES.keys()].join(', ')}; default the stream's.` }),
          }),
        },
      },
    },
  },
  responses: {
    202: { description: 'Queued', content: { 'application/json': { schema: JobSchema } } },
    ...errorResponses(400, 401, 403, 410, 422, 421),
  },
})

const getRoute = createRoute({
  method: 'get',
  path: '/v1/reprocess/{id}',
  summary: 'A reprocess job and, once done, its candidate against the current final snapshot per campaign (admin key)',
  security: bearerSecurity,
  request: { params: idParams },
  responses: {
    200: {
      description: 'Job and comparison',
      content: { 'application/json': { schema: z.object({ job: JobSchema, comparison: z.array(Comparison) }).openapi('Reprocess') } },
    },
    ...errorResponses(400, 401, 403, 404),
  },
})

const promoteRoute = createRoute({
  method: 'post',
  path: '/v1/reprocess/{id}/promote',
  summary: 'Make the candidate snapshots final as new versions (admin key)',
  description:
    'Promotion assigns snapshot versions, so the holder of the billing lease carries it out. On another replica the request waits for the holder; ' +
    'when none carries it out in time (none alive, or it refused the request) the answer is 503 `billing_executor_unavailable` with Retry-After: ' +
    'retry, or read the job to see whether the promotion landed later.',
  security: bearerSecurity,
  request: { params: idParams },
  responses: {
    200: { description: 'Promoted', content: { 'application/json': { schema: JobSchema } } },
    ...errorResponses(400, 401, 403, 404, 409, 421, 503),
  },
})

export function registerReprocessRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const { billing } = deps
  const clock = deps.clock ?? Date.now

  function reprocessJob(id: string): Job {
    const job = billing.get(id)
    if (!job || job.kind !== 'reprocess') throw new ApiError('not_found', 'no such reprocess job')
    return job
  }

  app.openapi(submitRoute, async (c) => {
    const admin = requireAdmin(c)
    const body = c.req.valid('json')
    if (body.from > body.to) throw new ApiError('invalid_range', 'from must not be after to')
    if (addDays(body.from, MAX_DAYS) <= body.to) throw new ApiError('invalid_range', `at most ${MAX_DAYS} days per reprocess`)
    refuseFutureDay(body.to, clock())
    refuseBeyondRetention(deps, 'events_raw', dayReach(body.from, LOOK_AROUND_MS), clock(), `reprocessing from ${body.from}`)
    // The model's decisions are written with their events' times: past their own retention they
    // would be removed as written, and a close keeping the promoted model would then read none.
    refuseBeyondRetention(deps, 'ivt_decisions', dayReach(body.from), clock(), `reprocessing from ${body.from} (its IVT decisions)`)
    if (!IVT_MODELS.has(body.modelVersion)) throw new ApiError('unknown_reference', `no IVT model ${body.modelVersion}; known: ${[...IVT_MODELS.keys()].join(', ')}`)
    if (body.attributionVersion !== undefined && !ATTRIBUTION_RULES.has(body.attributionVersion)) {
      throw new ApiError('unknown_reference', `no attribution rules ${body.attributionVersion}; known: ${[...ATTRIBUTION_RULES.keys()].join(', ')}`)
    }
    const job = await billing.submitReprocess({ ...body, requestedBy: admin.id })
    c.header('Location', `/v1/reprocess/${job.id}`)
    return c.json(jobView(job), 202)
  })

  app.openapi(getRoute, async (c) => {
    requireAdmin(c)
    const job = reprocessJob(c.req.valid('param').id)
    const comparison: z.infer<typeof Comparison>[] = []
    if (job.status === 'done') {
      for (const day of job.days) {
        const candidateVersion = job.versions[day]
        if (candidateVersion === undefined) continue
        // Compare against the final version that was current before any promotion of this job.
        const finals = (await billing.snapshots.versions(day)).filter((v) => v.status === 'final' && v.jobId !== job.id)
        const current = finals.at(-1)
        const cur = new Map(current ? perCampaign(await billing.snapshots.lines(day, current.version)).map((l) => [l.campaignId, l] as const) : [])
        const cand = new Map(perCampaign(await billing.snapshots.lines(day, candidateVersion)).map((l) => [l.campaignId, l] as const))
        for (const campaignId of [...new Set([...cur.keys(), ...cand.keys()])].sort()) {
          const a = cur.get(campaignId)
          const b = cand.get(campaignId)
          const fig = (l: typeof a, version: number) =>
            l ? { version, impressions: l.impressions, clicks: l.clicks, ivtImpressions: l.ivtImpressions, ivtClicks: l.ivtClicks, spendMicros: l.spendMicros } : null
          const d = (k: 'impressions' | 'clicks' | 'ivtImpressions' | 'ivtClicks' | 'spendMicros') => (b?.[k] ?? 0) - (a?.[k] ?? 0)
          comparison.push({
            day,
            campaignId,
            current: current ? fig(a, current.version) : null,
            candidate: fig(b, candidateVersion),
            delta: { impressions: d('impressions'), clicks: d('clicks'), ivtImpressions: d('ivtImpressions'), ivtClicks: d('ivtClicks'), spendMicros: d('spendMicros') },
          })
        }
      }
    }
    return c.json({ job: jobView(job), comparison }, 200)
  })

  app.openapi(promoteRoute, async (c) => {
    const admin = requireAdmin(c)
    const job = reprocessJob(c.req.valid('param').id)
    if (job.status !== 'done') throw new ApiError('job_not_ready', `the job is ${job.status}; only a done job can be promoted`)
    if (job.promotedVersions) throw new ApiError('conflict', 'the job was already promoted')
    const promoted = await billing.promote(job.id, admin.id).catch((err: unknown) => {
      // A concurrent promote got there first.
      if (err instanceof JobStateError) throw new ApiError('conflict', err.message)
      if (err instanceof BillingExecutorUnavailableError) {
        c.header('Retry-After', '30')
        throw new ApiError('billing_executor_unavailable', err.message)
      }
      throw err
    })
    return c.json(jobView(promoted), 200)
  })
}
