import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../lib/context.js'
import { fail } from '../lib/errors.js'
import { settingsFrom } from '../lib/settings.js'
import { ConfigUnavailableError, tenantSourceFor } from '../lib/tenants.js'

/** Puts parsed settings and the tenant config on the context; 503 only if no config was ever loaded. */
export function loadTenants() {
  return createMiddleware<AppEnv>(async function loadTenants(c, next) {
    const settings = settingsFrom(c.env)
    c.set('settings', settings)
    try {
      c.set('tenants', await tenantSourceFor({
        staticJson: c.env.EDGE_CONFIG_JSON, coreUrl: settings.coreUrl, syncKey: settings.edgeSyncKey, ttlMs: settings.configTtlMs,
      }).get())
    } catch (err) {
      if (err instanceof ConfigUnavailableError) throw fail('upstream_unavailable', 'tenant configuration is not available yet', { 'retry-after': '5' })
      throw err
    }
    await next()
  })
}
