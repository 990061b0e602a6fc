import { join } from 'node:path'
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { createDayExports } from '../../billing/exports.js'
import { type ApiEnv, type ResolvedApiDeps, bearerSecurity, dayParam, refuseFutureDay, requireAdmin } from '../context.js'
import { ApiError, errorResponses } from '../errors.js'

const FileSchema = z
  .object({
    name: z.string(),
    kind: z.enum(['advertiser', 'publisher']),
    id: z.string(),
    format: z.literal('csv'),
    rows: z.number().int(),
    bytes: z.number().int(),
    sha256: z.string().openapi({ description: 'hex SHA-256 of the file as served' }),
    url: z.string().openapi({ description: 'Path of the file on this API (admin key)' }),
  })
  .openapi('ExportFile')

const dayPath = dayParam.openapi({ param: { name: 'day', in: 'path' } })

const listRoute = createRoute({
  method: 'get',
  path: '/v1/reports/reconcile/{day}/files',
  summary: "Export files of the day's latest final snapshot: one CSV per advertiser and per publisher (admin key)",
  security: bearerSecurity,
  request: { params: z.object({ day: dayPath }) },
  responses: {
    200: { description: 'The files', content: { 'application/json': { schema: z.object({ day: z.string(), snapshotVersion: z.number().int(), files: z.array(FileSchema) }).openapi('ExportFiles') } } },
    ...errorResponses(400, 401, 403, 404),
  },
})

const fileRoute = createRoute({
  method: 'get',
  path: '/v1/reports/reconcile/{day}/files/{name}',
  summary: 'One export file (admin key)',
  security: bearerSecurity,
  request: { params: z.object({ day: dayPath, name: z.string().max(200).openapi({ param: { name: 'name', in: 'path' } }) }) },
  responses: {
    200: { description: 'The CSV', content: { 'text/csv': { schema: z.string() } } },
    ...errorResponses(400, 401, 403, 404),
  },
})

export function registerExportRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const exports = deps.dataDir ? createDayExports({ snapshots: deps.billing.snapshots, dir: join(deps.dataDir, 'exports') }) : undefined
  const clock = deps.clock ?? Date.now
  const need = () => {
    if (!exports) throw new ApiError('not_found', 'export files are not configured on this server (no data directory)')
    return exports
  }

  app.openapi(listRoute, async (c) => {
    requireAdmin(c)
    const { day } = c.req.valid('param')
    refuseFutureDay(day, clock())
    const exp = await need().ensure(day)
    if (!exp) throw new ApiError('not_found', `${day} has no final snapshot yet`)
    return c.json({ ...exp, files: exp.files.map((f) => ({ ...f, url: `/v1/reports/reconcile/${day}/files/${f.name}` })) }, 200)
  })

  app.openapi(fileRoute, async (c) => {
    requireAdmin(c)
    const { day, name } = c.req.valid('param')
    refuseFutureDay(day, clock())
    const text = await need().read(day, name)
    if (text === undefined) throw new ApiError('not_found', `no export file ${name} for ${day}`)
    return c.body(text, 200, { 'content-type': 'text/csv; charset=utf-8' })
  })
}
