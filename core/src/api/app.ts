import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { Histogram } from 'prom-client'
import { mountDashboard } from '../dashboard/serve.js'
import { join } from 'node:path'
import { createBillingJobs } from '../billing/jobs.js'
import { type ApiDeps, type ApiEnv, type ResolvedApiDeps, authenticate } from './context.js'
import { ApiError, createErrorHandler, describeZodError } from './errors.js'
import { registerAdminRoutes, registerEdgeConfigRoute } from './routes/admin.js'
import { registerBillingRoutes } from './routes/billing.js'
import { registerMetricsRoutes } from './routes/metrics.js'
import { registerReportRoutes } from './routes/reports.js'
import { registerReprocessRoutes } from './routes/reprocess.js'
import { registerPrivacyRoutes } from './routes/privacy.js'
import { homeRegionGuard } from './home-region.js'
import { keyLimit } from './key-limit.js'
import { registerExportRoutes } from './routes/exports.js'

export type { ApiDeps } from './context.js'

/**
 * The largest request body any `/v1` route reads (the largest real one, a campaign booked with a
 * thousand publishers, is about 130 kB). Without it any key holder, an advertiser's included, could
 * make core parse a body of any size before the route refuses it.
 */
export const API_MAX_BODY_BYTES = 1024 * 1024

/**
 * Core's read API: every `/v1` route is defined through `@hono/zod-openapi`, so `/openapi.json`
 * documents exactly the schemas that validate requests. Errors answer `{ error: { code, message } }`
 * with a code from `schemas/src/reasons.ts`. Also serves the dashboard at `/dashboard` and, when a
 * registry is given, records request durations into it (core's main serves `/metrics` on its internal port).
 * @example
 * const app = createApiApp({ clickhouse, database: 'adc', tenants, billing, logger })
 * serve({ fetch: app.fetch, port: 8788, hostname: '127.0.0.1' })
 */
export function createApiApp(options: ApiDeps): OpenAPIHono {
  const logger = options.logger
  const clock = options.clock ?? Date.now
  let billing = options.billing
  if (!billing) {
    if (!options.dataDir) throw new Error('createApiApp needs `billing` or a `dataDir` for the billing job records')
    billing = createBillingJobs({
      client: options.clickhouse,
      database: options.database,
      tenants: options.tenants,
      dir: join(options.dataDir, 'billing-jobs'),
      logger: logger.child({ component: 'billing' }),
      clock,
    })
    billing.start()
  }
  const deps: ResolvedApiDeps = { ...options, billing, clock }
  const hook = (result: { success: boolean; target: string; error?: unknown }) => {
    if (!result.success) {
      const message = describeZodError(result.error as Parameters<typeof describeZodError>[0])
      throw new ApiError(result.target === 'json' ? 'invalid_body' : 'invalid_query', message)
    }
  }
  const root = new OpenAPIHono({ defaultHook: hook })
  const onError = createErrorHandler(logger)
  root.onError(onError)
  // Filled once every route is registered: a known path with another method answers 405 + Allow.
  let allowed: Array<{ pattern: RegExp; methods: Set<string> }> = []
  const notFound = (c: Context) => {
    const methods = new Set<string>()
    for (const r of allowed) if (r.pattern.test(c.req.path)) for (const m of r.methods) methods.add(m)
    if (methods.size > 0) {
      if (methods.has('GET')) methods.add('HEAD')
      c.header('Allow', [...methods].sort().join(', '))
      return c.json({ error: { code: 'method_not_allowed', message: `${c.req.method} is not allowed on ${c.req.path}` } }, 405)
    }
    return c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404)
  }
  root.notFound(notFound)

  if (deps.registry) {
    const registry = deps.registry
    const name = 'adc_api_request_duration_seconds'
    const duration = (registry.getSingleMetric(name) as Histogram<'method' | 'route' | 'status'> | undefined) ?? new Histogram({
      name,
      help: 'API request duration by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    })
    root.use('*', async function requestMetrics(c, next) {
      const start = performance.now()
      await next()
      duration.observe({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) }, (performance.now() - start) / 1000)
    })
  }

  root.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'An admin, advertiser or publisher API key (the edge config pull uses EDGE_SYNC_KEY).',
  })

  // Core's main serves the edge's config pull on the internal port only (it passes no edgeSyncKey here).
  if (deps.edgeSyncKey !== undefined) registerEdgeConfigRoute(root, deps)

  const v1 = new OpenAPIHono<ApiEnv>({ defaultHook: hook })
  v1.onError(onError)
  v1.use('/v1/*', async (c, next) => {
    if (c.req.path === '/v1/internal/edge-config') return next()
    return authenticate(deps.tenants)(c, next)
  })
  // Counted as the body streams in (a declared Content-Length over it is refused before reading).
  v1.use('/v1/*', bodyLimit({
    maxSize: API_MAX_BODY_BYTES,
    onError: () => {
      throw new ApiError('payload_too_large', `the body exceeds ${API_MAX_BODY_BYTES} bytes`)
    },
  }))
  // core's main always passes one (API_RATE_LIMIT_*); an app built without it (tests, benches) has none.
  if (deps.keyLimit) v1.use('/v1/*', keyLimit(deps.keyLimit))
  if (deps.region !== undefined && deps.homeRegion !== undefined) {
    v1.use('/v1/*', homeRegionGuard({ region: deps.region, homeRegion: deps.homeRegion }))
  }
  registerAdminRoutes(v1, deps)
  registerMetricsRoutes(v1, deps)
  registerBillingRoutes(v1, deps)
  registerReportRoutes(v1, deps)
  registerReprocessRoutes(v1, deps)
  registerPrivacyRoutes(v1, deps)
  registerExportRoutes(v1, deps)
  root.route('/', v1)
  // A parent app that mounts this one (core's main) keeps its own notFound, so unmatched /v1 paths
  // are caught here to keep the JSON error shape and the 405s.
  root.all('/v1/*', notFound)

  root.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Ad event collector: core API',
      version: '1.0.0',
      description: 'Realtime metrics (provisional), billing snapshots (final, versioned), settlement, reconciliation, reprocessing and tenant admin.',
    },
    security: [{ bearerAuth: [] }],
  })
  mountDashboard(root)
  const byPath = new Map<string, Set<string>>()
  for (const r of root.routes) {
    if (r.method === 'ALL' || r.path.includes('*')) continue
    byPath.set(r.path, (byPath.get(r.path) ?? new Set()).add(r.method))
  }
  allowed = [...byPath.entries()].map(([path, methods]) => ({
    pattern: new RegExp(`^${path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+')}$`),
    methods,
  }))
  return root
}
