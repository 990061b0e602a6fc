import { createMiddleware } from 'hono/factory'
import type { Env } from '../env.js'
import type { AppEnv } from '../lib/context.js'
import { fail } from '../lib/errors.js'
import { settingsFrom } from '../lib/settings.js'
import { ConfigUnavailableError, tenantSourceFor, type TenantIndex } from '../lib/tenants.js'

/** The tenant config for this Worker's variables (cached per isolate); throws ConfigUnavailableError. */
export function tenantsFor(env: Env): Promise<TenantIndex> {
  const settings = settingsFrom(env)
  return tenantSourceFor({ staticJson: env.EDGE_CONFIG_JSON, coreUrl: settings.coreUrl, syncKey: settings.edgeSyncKey, ttlMs: settings.configTtlMs }).get()
}

/** Puts parsed settings and the tenant config on the context; 503 only if no config was ever loaded. */
export function loadTenants() {
  return createMiddleware<AppEnv>(async function loadTenants(c, next) {
    c.set('settings', settingsFrom(c.env))
    try {
      c.set('tenants', await tenantsFor(c.env))
    } catch (err) {
      if (err instanceof ConfigUnavailableError) throw fail('upstream_unavailable', `tenant configuration is not available: ${err.message}`, { 'retry-after': '5' })
      throw err
    }
    await next()
  })
}
