import { textProblem } from '@adc/schemas'
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { eraseSubject, type PrivacySubject } from '../../privacy/erase.js'
import { readPrivacyRequest } from '../../privacy/retry.js'
import { type ApiEnv, type ResolvedApiDeps, bearerSecurity, idParam, requireAdmin, ulidParam } from '../context.js'
import { ApiError, errorResponses } from '../errors.js'

const Body = z
  .object({
    publisherId: idParam,
    userKey: z
      .string()
      .min(1)
      .max(128)
      // As events carry it: a lone surrogate would reach the engine and the hash as U+FFFD, another person's key.
      .superRefine((s, ctx) => {
        const problem = textProblem(s)
        if (problem) ctx.addIssue({ code: 'custom', message: problem })
      })
      .optional()
      .openapi({ description: 'The userKey the publisher sent with the events (no control characters, well-formed Unicode, as events carry it)' }),
    ipHash: z.string().regex(/^[0-9a-fA-F]{16,128}$/, 'must be the hex IP hash as stored').optional().openapi({ description: 'The IP hash the edge stored' }),
  })
  .openapi('PrivacyDeleteRequest')

const Audit = z
  .object({
    requestId: z.string(),
    requestedAt: z.number().int(),
    publisherId: z.string(),
    subject: z.enum(['userKey', 'ipHash']),
    subjectSha256: z.string(),
    deleted: z.object({ events_raw: z.number().int(), ivt_decisions: z.number().int(), bad_rows: z.number().int() }),
    external: z.record(z.string(), z.enum(['done', 'pending'])).openapi({ description: 'Every store the rows are erased from: ClickHouse\'s own tables (clickhouse) and the raw stores erased elsewhere (iceberg); done once the store holds the rows no more, pending otherwise (then the retry finishes it)' }),
  })
  .openapi('PrivacyDeleteAudit')

const deleteRoute = createRoute({
  method: 'post',
  path: '/v1/admin/privacy/delete',
  summary: "Erase one person's raw rows of a publisher, by userKey or ipHash (admin key); billed aggregates and snapshots stay",
  security: bearerSecurity,
  request: { body: { content: { 'application/json': { schema: Body } }, required: true } },
  responses: {
    200: { description: 'Erased from ClickHouse; the audit record', content: { 'application/json': { schema: Audit } } },
    ...errorResponses(400, 401, 403),
  },
})

const RequestStatus = Audit.extend({
  external: z.record(z.string(), z.enum(['done', 'pending'])).openapi({
    description: 'Every store (clickhouse, iceberg) as it stands now: a store the request left pending is retried (by the lake upkeep, or without a lake by its own schedule) and shows done once a retry finished it',
  }),
  completedAt: z.number().int().nullable().openapi({ description: 'When the last store finished (epoch ms); null while one is pending' }),
}).openapi('PrivacyRequestStatus')

const getRoute = createRoute({
  method: 'get',
  path: '/v1/admin/privacy/requests/{requestId}',
  summary: 'A privacy request as it stands: its audit record with the current status of each raw store erased elsewhere (admin key)',
  security: bearerSecurity,
  request: { params: z.object({ requestId: ulidParam.openapi({ param: { name: 'requestId', in: 'path' }, example: '01JD0000000000000000000000' }) }) },
  responses: {
    200: { description: 'The request', content: { 'application/json': { schema: RequestStatus } } },
    ...errorResponses(400, 401, 403, 404),
  },
})

export function registerPrivacyRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const clock = deps.clock ?? Date.now
  app.openapi(deleteRoute, async (c) => {
    const admin = requireAdmin(c)
    const body = c.req.valid('json')
    if ((body.userKey === undefined) === (body.ipHash === undefined)) throw new ApiError('invalid_body', 'give exactly one of userKey and ipHash')
    const subject: PrivacySubject = body.userKey !== undefined
      ? { publisherId: body.publisherId, userKey: body.userKey }
      : { publisherId: body.publisherId, ipHash: body.ipHash!.toLowerCase() }
    const audit = await eraseSubject({ client: deps.clickhouse, database: deps.database, logger: deps.logger, ...(deps.rawErasers ? { erasers: deps.rawErasers } : {}) }, subject, { requestedBy: admin.id, now: clock(), clock })
    deps.logger.info({ by: admin.id, requestId: audit.requestId, publisherId: audit.publisherId, subject: audit.subject, deleted: audit.deleted, external: audit.external }, 'privacy erasure done')
    const { requestedBy: _by, ...view } = audit
    return c.json(view, 200)
  })

  app.openapi(getRoute, async (c) => {
    requireAdmin(c)
    const { requestId } = c.req.valid('param')
    const status = await readPrivacyRequest({ client: deps.clickhouse, database: deps.database }, requestId)
    if (!status) throw new ApiError('not_found', `no privacy request ${requestId}`)
    return c.json(status, 200)
  })
}
