import type { MiddlewareHandler } from 'hono'
import type { ApiEnv } from './context.js'
import { ApiError } from './errors.js'

/** Header naming the home region on a `not_home_region` answer, for clients that retry there. */
export const HOME_REGION_HEADER = 'X-Adc-Home-Region'

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * The writes only the home region takes (docs/regions.md): tenant changes, because the tenant
 * store is one ordered topic mirrored out from home (a region appending to its own copy would
 * diverge), and billing jobs, reprocessing and promotion, because billing snapshots have one
 * writer. Privacy erasure is not one of them: raw rows are regional, so it runs in every region.
 */
export function isHomeOnlyWrite(method: string, path: string): boolean {
  if (SAFE.has(method)) return false
  if (path === '/v1/admin/privacy/delete') return false
  return path.startsWith('/v1/admin/') || path === '/v1/billing/jobs' || path === '/v1/reprocess' || /^\/v1\/reprocess\/[^/]+\/promote$/.test(path)
}

/**
 * Refuses home-only writes on a replica outside the home region with 421 Misdirected Request
 * (RFC 9110 §15.5.20: this server is not the one to answer it) and the home region named. Runs
 * after authentication: a key that may not make the write at all still gets its 401/403.
 * @example
 * v1.use('/v1/*', homeRegionGuard({ region: 'us', homeRegion: 'eu' }))
 */
export function homeRegionGuard({ region, homeRegion }: { region: string; homeRegion: string }): MiddlewareHandler<ApiEnv> {
  return async function homeRegionOnly(c, next) {
    if (region !== homeRegion && c.get('principal')?.kind === 'admin' && isHomeOnlyWrite(c.req.method, c.req.path)) {
      c.header(HOME_REGION_HEADER, homeRegion)
      throw new ApiError('not_home_region', `this replica is in region ${region}; tenant and billing writes go to the home region ${homeRegion}`)
    }
    await next()
  }
}
