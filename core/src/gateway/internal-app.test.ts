import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log } from '../log/log.js'
import { createLogger } from '../logger.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createInternalApp } from './internal-app.js'

const V2 = 'application/vnd.kafka.json.v2+json'
const CREDS = { user: 'edge_test', password: 'proxy-password-test' }
let dir: string
let log: Log
let tenants: TenantStore
let app: ReturnType<typeof createInternalApp>

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'adc-internal-'))
  log = await createEmbeddedLog({ dir: join(dir, 'log') })
  await log.ensureTopic('ad-events', 2)
  await log.ensureTopic('edge-stats', 1)
  tenants = openTenantStore({ dir: join(dir, 'tenants') })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  app = createInternalApp({
    gateway: { log, topics: ['ad-events', 'edge-stats'], credentials: CREDS },
    tenants, edgeSyncKey: 'edge_sync_test', registry: createMetricsRegistry({ defaultMetrics: false }), logger: createLogger({ level: 'silent' }),
  })
})
afterEach(async () => {
  await log.close()
  await tenants.close()
  rmSync(dir, { recursive: true, force: true })
})

async function total(topic: string): Promise<number> {
  return [...(await log.endOffsets(topic)).values()].reduce((a, b) => a + b, 0)
}

function produce(topic: string, authorization?: string) {
  return app.request(`/topics/${topic}`, {
    method: 'POST',
    headers: { 'content-type': V2, ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ records: [{ key: 'imp_forged', value: { forged: true } }] }),
  })
}

describe('the REST proxy gateway on the internal port', () => {
  it.each([
    ['no credentials', undefined],
    ['a wrong password', basic(CREDS.user, 'not-the-password')],
    ['a wrong user', basic('someone', CREDS.password)],
    ['a bearer token', 'Bearer edge_sync_test'],
    ['a malformed header', 'Basic !!!'],
  ])('refuses %s with 401, WWW-Authenticate: Basic and the proxy error shape, appending nothing', async (_, authorization) => {
    for (const topic of ['ad-events', 'edge-stats']) {
      const res = await produce(topic, authorization)
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic /)
      expect(await res.json()).toMatchObject({ error_code: 40101, message: expect.any(String) })
      expect(await total(topic)).toBe(0)
    }
    expect((await app.request('/topics', { headers: authorization ? { authorization } : {} })).status).toBe(401)
  })

  it('appends with the right credentials', async () => {
    const res = await produce('edge-stats', basic(CREDS.user, CREDS.password))
    expect(res.status).toBe(200)
    expect(await total('edge-stats')).toBe(1)
  })

  it('serves /metrics and /healthz without credentials', async () => {
    expect((await app.request('/healthz')).status).toBe(200)
    const metrics = await app.request('/metrics')
    expect(metrics.status).toBe(200)
    expect(metrics.headers.get('content-type')).toContain('text/plain')
  })

  it("serves the edge's config pull to EDGE_SYNC_KEY only", async () => {
    expect((await app.request('/v1/internal/edge-config')).status).toBe(401)
    expect((await app.request('/v1/internal/edge-config', { headers: { authorization: 'Bearer edge_sync_wrong' } })).status).toBe(401)
    expect((await app.request('/v1/internal/edge-config', { headers: { authorization: `Bearer ${DEMO_DEFAULTS.publisherKey}` } })).status).toBe(401)
    const res = await app.request('/v1/internal/edge-config', { headers: { authorization: 'Bearer edge_sync_test' } })
    expect(res.status).toBe(200)
    expect((await res.json() as { publishers: { id: string }[] }).publishers.map((p) => p.id)).toEqual(['pub_demo'])
  })

  it('serves no REST proxy when the gateway is off', async () => {
    const off = createInternalApp({ tenants, edgeSyncKey: 'edge_sync_test', registry: createMetricsRegistry({ defaultMetrics: false }), logger: createLogger({ level: 'silent' }) })
    expect((await off.request('/topics/ad-events', { method: 'POST', headers: { authorization: basic(CREDS.user, CREDS.password) } })).status).toBe(404)
  })
})
