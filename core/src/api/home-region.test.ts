import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { DEMO_DEFAULTS, hashApiKey } from '../tenants/tenant-store.js'
import { createApiApp } from './app.js'
import { useBillingEnv } from '../testing/billing-env.js'

/**
 * A replica outside the home region (docs/regions.md) refuses the writes only home may take:
 * tenant changes (one ordered topic, mirrored out from home) and billing snapshots. Reads, and
 * privacy erasures of the region's own raw rows, stay allowed. Through the real app and tenant store.
 */
const NOW = Date.parse('2026-11-22T12:00:00Z')
const ADMIN = DEMO_DEFAULTS.adminKey
const ADV = DEMO_DEFAULTS.advertiserKey
const PUB_KEY_HASH = hashApiKey(DEMO_DEFAULTS.publisherKey)

const env = useBillingEnv({ tempPrefix: 'adc-home-region-', clock: () => NOW })
const logger = pino({ level: 'silent' })
const appIn = (region?: string, homeRegion?: string) =>
  createApiApp({ clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger, clock: () => NOW, ...(region ? { region } : {}), ...(homeRegion ? { homeRegion } : {}) })
async function send(app: ReturnType<typeof createApiApp>, method: string, path: string, key: string, body?: unknown) {
  const headers: Record<string, string> = { Authorization: `Bearer ${key}` }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await app.request(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  return { status: res.status, body: (await res.json()) as any, homeRegion: res.headers.get('x-adc-home-region') }
}

/** Every write only the home region takes, with a body each route would otherwise accept. */
const HOME_ONLY: Array<[string, string, unknown?]> = [
  ['POST', '/v1/admin/advertisers', { id: 'adv_us', name: 'US' }],
  ['POST', '/v1/admin/campaigns', { id: 'cmp_us', advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 1 } }],
  ['POST', '/v1/admin/publishers', { id: 'pub_us', name: 'US' }],
  ['PATCH', '/v1/admin/publishers/pub_demo', { rateLimit: { perSecond: 1, burst: 1 } }],
  ['POST', '/v1/admin/publishers/pub_demo/api-keys', { scope: 'server' }],
  ['DELETE', `/v1/admin/publishers/pub_demo/api-keys/${PUB_KEY_HASH}`],
  ['POST', '/v1/admin/publishers/pub_demo/signing-keys', { keyId: 'k_us' }],
  ['DELETE', '/v1/admin/publishers/pub_demo/signing-keys/demo'],
  ['POST', '/v1/billing/jobs', { day: '2026-11-20' }],
  ['POST', '/v1/reprocess', { from: '2026-11-20', to: '2026-11-20', reason: 'test', modelVersion: 'ivt-2026.12.1' }],
  ['POST', '/v1/reprocess/01JD0000000000000000000000/promote'],
]

describe('a replica outside the home region', () => {
  it('refuses every tenant and billing write with 421 not_home_region, naming the home region, and changes nothing', async () => {
    const app = appIn('us', 'eu')
    const before = JSON.stringify(env.tenants.edgeConfig())
    for (const [method, path, body] of HOME_ONLY) {
      const res = await send(app, method, path, ADMIN, body)
      expect({ method, path, status: res.status, code: res.body?.error?.code, homeRegion: res.homeRegion }).toEqual({ method, path, status: 421, code: 'not_home_region', homeRegion: 'eu' })
      expect(res.body.error.message).toMatch(/home region eu/)
    }
    expect(JSON.stringify(env.tenants.edgeConfig())).toBe(before)
    expect(env.tenants.getAdvertiser('adv_us')).toBeUndefined()
    expect(env.billing.list()).toEqual([])
  })

  it('still serves reads, and privacy erasures of its own raw rows', async () => {
    const app = appIn('us', 'eu')
    expect((await send(app, 'GET', '/v1/campaigns', ADMIN)).status).toBe(200)
    expect((await send(app, 'GET', '/v1/me', ADV)).status).toBe(200)
    expect((await send(app, 'GET', '/v1/metrics/realtime?campaignId=cmp_demo_cpm', ADV)).status).toBe(200)
    const erased = await send(app, 'POST', '/v1/admin/privacy/delete', ADMIN, { publisherId: 'pub_demo', userKey: 'someone' })
    expect(erased.status).toBe(200)
  })

  it('answers a non-admin key as before (403), not with the region', async () => {
    const res = await send(appIn('us', 'eu'), 'POST', '/v1/admin/advertisers', ADV, { id: 'adv_x', name: 'X' })
    expect(res).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } }, homeRegion: null })
    expect((await send(appIn('us', 'eu'), 'POST', '/v1/admin/advertisers', 'nope_key', { id: 'adv_x', name: 'X' })).status).toBe(401)
  })

  it('takes the writes in the home region, and when no region is configured', async () => {
    expect((await send(appIn('eu', 'eu'), 'POST', '/v1/admin/advertisers', ADMIN, { id: 'adv_home', name: 'Home' })).status).toBe(201)
    expect((await send(appIn(), 'POST', '/v1/admin/advertisers', ADMIN, { id: 'adv_single', name: 'Single' })).status).toBe(201)
  })
})
