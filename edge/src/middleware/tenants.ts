/**
 * Middleware that puts the parsed settings and the tenant config on the request's context.
 */
import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../context.js'
import { fail } from '../errors.js'
import { settingsFrom } from '../settings.js'
import { ConfigUnavailableError, tenantsFor } from '../tenants/tenants.js'

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
