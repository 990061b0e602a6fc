import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { eraseSubject, type PrivacySubject } from '../../privacy/erase.js'
import { type ApiEnv, type ResolvedApiDeps, bearerSecurity, idParam, requireAdmin } from '../context.js'
import { ApiError, errorResponses } from '../errors.js'

const Body = z
  .object({
    publisherId: idParam,
    userKey: z.string().min(1).max(128).optional().openapi({ description: 'The userKey the publisher sent with the events' }),
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
    external: z.record(z.string(), z.enum(['done', 'pending'])).openapi({ description: 'Raw stores erased elsewhere (iceberg): done once no data file of the store holds the rows any more, pending otherwise' }),
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

export function registerPrivacyRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const clock = deps.clock ?? Date.now
  app.openapi(deleteRoute, async (c) => {
    const admin = requireAdmin(c)
    const body = c.req.valid('json')
    if ((body.userKey === undefined) === (body.ipHash === undefined)) throw new ApiError('invalid_body', 'give exactly one of userKey and ipHash')
    const subject: PrivacySubject = body.userKey !== undefined
      ? { publisherId: body.publisherId, userKey: body.userKey }
      : { publisherId: body.publisherId, ipHash: body.ipHash!.toLowerCase() }
    const audit = await eraseSubject({ client: deps.clickhouse, database: deps.database, ...(deps.rawErasers ? { erasers: deps.rawErasers } : {}) }, subject, { requestedBy: admin.id, now: clock() })
    deps.logger.info({ by: admin.id, requestId: audit.requestId, publisherId: audit.publisherId, subject: audit.subject, deleted: audit.deleted, external: audit.external }, 'privacy erasure done')
    const { requestedBy: _by, ...view } = audit
    return c.json(view, 200)
  })
}
