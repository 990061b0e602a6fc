import { OpenAPIHono } from '@hono/zod-openapi'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { createErrorHandler } from '../api/errors.js'
import { registerEdgeConfigRoute } from '../api/routes/admin.js'
import type { Log } from '../log/log.js'
import type { TenantStore } from '../tenants/tenant-store.js'
import { restProxyBasicAuth, type BasicCredentials } from './basic-auth.js'
import { createRestProxy } from './rest-proxy.js'

export interface InternalAppOptions {
  /** The REST proxy gateway, behind HTTP Basic; absent when GATEWAY_ENABLED=false. */
  gateway?: { log: Log; topics: readonly string[]; credentials: BasicCredentials }
  tenants: TenantStore
  /** Bearer key of the edge's config pull (`EDGE_SYNC_KEY`). */
  edgeSyncKey: string
  registry: Registry
  logger: Logger
  /** The processor's health (503 while a partition is stalled); absent: always ok. */
  health?: () => { status: 'ok' | 'degraded' }
}

/**
 * Core's internal port: what only the edge and monitoring call. The REST proxy gateway (the one
 * front door to the log, HTTP Basic like Confluent's proxy), the edge's tenant config pull
 * (EDGE_SYNC_KEY), Prometheus `/metrics` and `/healthz`. The public port serves none of these but
 * `/healthz`, so a forged record or a scrape needs this port and its credentials.
 */
export function createInternalApp({ gateway, tenants, edgeSyncKey, registry, logger, health }: InternalAppOptions): OpenAPIHono {
  const app = new OpenAPIHono()
  app.onError(createErrorHandler(logger))
  app.get('/healthz', (c) => {
    const h = health?.() ?? { status: 'ok' as const }
    return c.json(h, h.status === 'ok' ? 200 : 503)
  })
  app.get('/metrics', async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }))
  if (gateway) {
    const auth = restProxyBasicAuth(gateway.credentials)
    app.use('/topics', auth)
    app.use('/topics/*', auth)
    app.route('/', createRestProxy({ log: gateway.log, topics: gateway.topics }))
  }
  registerEdgeConfigRoute(app, { tenants, edgeSyncKey })
  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404))
  return app
}
