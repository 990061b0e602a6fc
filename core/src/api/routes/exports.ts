import { SNAPSHOT_VERSION_HEADER } from '@adc/schemas'
import { join } from 'node:path'
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { CONTENT_TYPES, createDayExports, parseExportName, type ExportFile } from '../../billing/exports.js'
import { createLocalObjectStore } from '../../objects/local-store.js'
import type { Principal } from '../../tenants/tenant-store.js'
import { type ApiEnv, type ResolvedApiDeps, bearerSecurity, dayParam, refuseFutureDay } from '../context.js'
import { ApiError, errorResponses } from '../errors.js'

/** How long a presigned URL of the listing stays valid when the deps do not say. */
export const DEFAULT_EXPORT_URL_TTL_SECONDS = 900

const FileSchema = z
  .object({
    name: z.string(),
    kind: z.enum(['advertiser', 'publisher']),
    id: z.string(),
    format: z.enum(['csv', 'parquet']),
    rows: z.number().int().openapi({ description: 'Snapshot lines in the file (the CSV header is not counted)' }),
    bytes: z.number().int(),
    sha256: z.string().openapi({ description: 'hex SHA-256 of the file as served' }),
    url: z.string().openapi({
      description: 'Where to fetch the file: on S3 a presigned GET URL (no other credentials, valid until `expiresAt`); embedded, a path on this API taking the same key as this listing',
    }),
    expiresAt: z.string().nullable().openapi({ description: 'When a presigned `url` stops working (ISO 8601); null for a path on this API' }),
  })
  .openapi('ExportFile')

const dayPath = dayParam.openapi({ param: { name: 'day', in: 'path' } })

const listRoute = createRoute({
  method: 'get',
  path: '/v1/reports/reconcile/{day}/files',
  summary: "Export files of the day's latest final snapshot: a CSV and a Parquet file per advertiser and per publisher (admin: all; advertiser and publisher keys: their own)",
  security: bearerSecurity,
  request: { params: z.object({ day: dayPath }) },
  responses: {
    200: {
      description: 'The files of the latest final version',
      content: {
        'application/json': {
          schema: z
            .object({
              day: z.string(),
              snapshotVersion: z.number().int().openapi({ description: 'The final snapshot version the files hold (the latest)' }),
              complete: z.boolean(),
              finalAt: z.number().int().openapi({ description: 'When that version was written (epoch ms)' }),
              files: z.array(FileSchema),
            })
            .openapi('ExportFiles'),
        },
      },
    },
    ...errorResponses(400, 401, 403, 404),
  },
})

const fileRoute = createRoute({
  method: 'get',
  path: '/v1/reports/reconcile/{day}/files/{name}',
  summary: 'One export file, streamed (admin: any; advertiser and publisher keys: their own)',
  security: bearerSecurity,
  request: {
    params: z.object({ day: dayPath, name: z.string().max(200).openapi({ param: { name: 'name', in: 'path' }, example: 'advertiser-adv_demo.parquet' }) }),
    query: z.object({
      version: z.coerce.number().int().min(1).max(4_294_967_295).optional().openapi({ description: 'Snapshot version (the listing names it); default: the latest final' }),
    }),
  },
  responses: {
    200: { description: 'The file', content: { 'text/csv': { schema: z.string() }, [CONTENT_TYPES.parquet]: { schema: z.string().openapi({ format: 'binary' }) } } },
    ...errorResponses(400, 401, 403, 404),
  },
})

/** Admin reads every file; an advertiser or publisher key only the files named after itself. */
function mayRead(p: Principal, file: { kind: string; id: string }): boolean {
  return p.kind === 'admin' || (p.kind === file.kind && p.id === file.id)
}

export function registerExportRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const store = deps.exportStore ?? (deps.dataDir ? createLocalObjectStore({ root: join(deps.dataDir, 'exports') }) : undefined)
  const exports = store ? createDayExports({ snapshots: deps.billing.snapshots, clickhouse: deps.clickhouse, database: deps.database, store }) : undefined
  const ttl = deps.exportUrlTtlSeconds ?? DEFAULT_EXPORT_URL_TTL_SECONDS
  const clock = deps.clock
  const need = () => {
    if (!exports) throw new ApiError('not_found', 'export files are not configured on this server (no object store or data directory)')
    return exports
  }
  const principalOf = (c: Context<ApiEnv>) => {
    const p = c.get('principal')
    if (p.kind !== 'admin' && p.kind !== 'advertiser' && p.kind !== 'publisher') throw new ApiError('forbidden', 'this key cannot read export files')
    return p
  }

  app.openapi(listRoute, async (c) => {
    const p = principalOf(c)
    const { day } = c.req.valid('param')
    const now = clock()
    refuseFutureDay(day, now)
    const exp = await need().ensure(day)
    if (!exp) throw new ApiError('not_found', `${day} has no final snapshot yet`)
    const url = (f: ExportFile): { url: string; expiresAt: string | null } => {
      const signed = store!.signedUrl(need().keyOf(exp, f), ttl, now)
      if (signed) return { url: signed, expiresAt: new Date(now + ttl * 1000).toISOString() }
      return { url: `/v1/reports/reconcile/${day}/files/${f.name}?version=${exp.snapshotVersion}`, expiresAt: null }
    }
    const files = exp.files.filter((f) => mayRead(p, f)).map((f) => ({ ...f, ...url(f) }))
    return c.json({ day: exp.day, snapshotVersion: exp.snapshotVersion, complete: exp.complete, finalAt: exp.finalAt, files }, 200)
  })

  app.openapi(fileRoute, async (c) => {
    const p = principalOf(c)
    const { day, name } = c.req.valid('param')
    const { version } = c.req.valid('query')
    refuseFutureDay(day, clock())
    const parsed = parseExportName(name)
    if (!parsed) throw new ApiError('not_found', `no export file ${name} for ${day}`)
    // Decided on the name alone, before anything is read: another tenant's file is refused whether it exists or not.
    if (!mayRead(p, parsed)) throw new ApiError('forbidden', `${name} is not one of this key's files`)
    const ex = need()
    let exp = version === undefined ? await ex.ensure(day) : await ex.manifest(day, version)
    // A version not written yet is written only when it is the latest final one.
    if (!exp && version !== undefined) exp = await ex.ensure(day).then((e) => (e?.snapshotVersion === version ? e : undefined))
    const file = exp?.files.find((f) => f.name === name)
    if (!exp || !file) throw new ApiError('not_found', `no export file ${name} for ${day}${version === undefined ? '' : ` version ${version}`}`)
    const opened = await store!.open(ex.keyOf(exp, file))
    if (!opened) throw new ApiError('object_storage_error', `export file ${name} of ${day} version ${exp.snapshotVersion} is in its manifest but missing from the store`)
    return c.body(opened.body, 200, {
      'content-type': CONTENT_TYPES[file.format],
      'content-length': String(file.bytes),
      'content-disposition': `attachment; filename="${day}-v${exp.snapshotVersion}-${name}"`,
      etag: `"${file.sha256}"`,
      [SNAPSHOT_VERSION_HEADER]: String(exp.snapshotVersion),
    }) as never
  })
}
