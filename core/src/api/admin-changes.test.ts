import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEmbeddedLog, type EmbeddedLogHandle } from '../log/embedded-log.js'
import { openSharedTenantStore } from '../tenants/shared-tenant-store.js'
import { DEMO_DEFAULTS, hashApiKey, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createAdminKey } from '../tenants/bootstrap.js'
import { keyFingerprint, SYSTEM_ACTORS } from '../tenants/change-log.js'
import { useBillingEnv } from '../testing/billing-env.js'
import { createApiApp } from './app.js'

/**
 * `GET /v1/admin/changes`: every tenant change the admin API makes names the admin key that made it
 * (its id and key fingerprint, never the key), and any replica lists it, newest first. Two core
 * replicas' tenant stores on one embedded log, each with the real app in front.
 */
const NOW = Date.parse('2026-11-22T12:00:00Z')
const env = useBillingEnv({ tempPrefix: 'adc-admin-changes-', clock: () => NOW })
let log: EmbeddedLogHandle
let a: TenantStore
let b: TenantStore
let opsKey: string

const appOn = (tenants: TenantStore) => createApiApp({ clickhouse: env.ch.client, database: 'adc', tenants, billing: env.billing, logger: env.logger, clock: () => NOW })

async function send(app: ReturnType<typeof createApiApp>, method: string, path: string, key: string, body?: unknown) {
  const headers: Record<string, string> = { Authorization: `Bearer ${key}` }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await app.request(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  return { status: res.status, body: (await res.json()) as any, text: '' }
}

beforeAll(async () => {
  log = await createEmbeddedLog({ dir: env.tmp(), logger: env.logger, idleWaitMs: 50 })
  a = await openSharedTenantStore({ dir: env.tmp(), log, logger: env.logger })
  b = await openSharedTenantStore({ dir: env.tmp(), log, logger: env.logger })
  await seedDemoTenant(a, DEMO_DEFAULTS)
  opsKey = await createAdminKey(a, 'ops')
})
afterAll(async () => {
  await a?.close()
  await b?.close()
  await log?.close()
})

describe('GET /v1/admin/changes', () => {
  it('lists every admin write with the admin key that made it, on another replica too, and no secret', async () => {
    const app = appOn(a)
    const ops = { kind: 'admin', id: 'ops', keyFingerprint: keyFingerprint(hashApiKey(opsKey)) }
    const writes: Array<[string, string, unknown?]> = [
      ['POST', '/v1/admin/advertisers', { id: 'adv_audit', name: 'Audit' }],
      ['POST', '/v1/admin/campaigns', { id: 'cmp_audit', advertiserId: 'adv_audit', pricing: { model: 'cpm', priceMicros: 1_000 } }],
      ['POST', '/v1/admin/publishers', { id: 'pub_audit', name: 'Audit' }],
      ['PATCH', '/v1/admin/publishers/pub_audit', { rateLimit: { perSecond: 1, burst: 2 } }],
      ['POST', '/v1/admin/publishers/pub_audit/api-keys', { scope: 'server' }],
      ['POST', '/v1/admin/publishers/pub_audit/signing-keys', { keyId: 'k_audit' }],
      ['DELETE', '/v1/admin/publishers/pub_audit/signing-keys/k_audit'],
    ]
    const answers = []
    for (const [method, path, body] of writes) {
      const res = await send(app, method, path, opsKey, body)
      expect({ method, path, status: res.status }).toEqual({ method, path, status: method === 'POST' ? 201 : 200 })
      answers.push(res.body)
    }
    const revoke = await send(app, 'DELETE', `/v1/admin/publishers/pub_audit/api-keys/${answers[4].keyHash}`, opsKey)
    expect(revoke.status).toBe(200)
    // A refused change is listed too, as refused.
    expect((await send(app, 'POST', '/v1/admin/advertisers', DEMO_DEFAULTS.adminKey, { id: 'adv_audit', name: 'again' })).status).toBe(409)

    const other = appOn(b)
    const until = Date.now() + 5_000
    let listed = await send(other, 'GET', '/v1/admin/changes?limit=9', DEMO_DEFAULTS.adminKey)
    while (listed.body.changes?.[0]?.op !== 'createAdvertiser' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20))
      listed = await send(other, 'GET', '/v1/admin/changes?limit=9', DEMO_DEFAULTS.adminKey)
    }
    expect(listed.status).toBe(200)
    const { changes } = listed.body
    expect(changes.map((c: any) => [c.op, c.target, c.outcome])).toEqual([
      ['createAdvertiser', { kind: 'advertiser', id: 'adv_audit' }, 'refused'],
      ['revokePublisherApiKey', { kind: 'publisher', id: 'pub_audit' }, 'applied'],
      ['revokeSigningKey', { kind: 'publisher', id: 'pub_audit' }, 'applied'],
      ['addSigningKey', { kind: 'publisher', id: 'pub_audit' }, 'applied'],
      ['addPublisherApiKey', { kind: 'publisher', id: 'pub_audit' }, 'applied'],
      ['updatePublisher', { kind: 'publisher', id: 'pub_audit' }, 'applied'],
      ['createPublisher', { kind: 'publisher', id: 'pub_audit' }, 'applied'],
      ['createCampaign', { kind: 'campaign', id: 'cmp_audit' }, 'applied'],
      ['createAdvertiser', { kind: 'advertiser', id: 'adv_audit' }, 'applied'],
    ])
    expect(changes[0].actor).toEqual({ kind: 'admin', id: 'admin_demo', keyFingerprint: keyFingerprint(hashApiKey(DEMO_DEFAULTS.adminKey)) })
    for (const c of changes.slice(1)) expect(c.actor).toEqual(ops)
    for (const c of changes) expect(c.at).toBeGreaterThan(Date.parse('2026-01-01'))
    expect(changes[7].details).toMatchObject({ advertiserId: 'adv_audit', pricing: { model: 'cpm', priceMicros: 1_000 } })
    const text = JSON.stringify(listed.body)
    for (const secret of [opsKey, DEMO_DEFAULTS.adminKey, hashApiKey(opsKey), answers[2].apiKey, answers[2].publicKey, answers[2].signingSecret, answers[2].requestSigningSecret, answers[4].apiKey, answers[4].keyHash, answers[5].signingSecret]) {
      expect(text).not.toContain(secret)
    }
    // The next page goes on where this one ended, down to the seed and the operator's new key.
    expect(listed.body.next).toBe(changes[8].seq)
    const rest = await send(other, 'GET', `/v1/admin/changes?limit=1000&before=${listed.body.next}`, DEMO_DEFAULTS.adminKey)
    expect(rest.body.changes[0]).toMatchObject({ op: 'addKey', actor: SYSTEM_ACTORS.adminCli, target: { kind: 'admin', id: 'ops' } })
    expect(rest.body.changes.slice(1).every((c: any) => c.actor.id === SYSTEM_ACTORS.demoSeed.id)).toBe(true)
    expect(rest.body.next).toBeUndefined()
  })

  it('is for admin keys only, and refuses bad query parameters with 400 invalid_query', async () => {
    const app = appOn(a)
    for (const key of [DEMO_DEFAULTS.advertiserKey, DEMO_DEFAULTS.publisherKey]) {
      const res = await send(app, 'GET', '/v1/admin/changes', key)
      expect(res.status).toBe(403)
      expect(res.body.error.code).toBe('forbidden')
    }
    for (const query of ['limit=0', 'limit=1001', 'limit=ten', 'before=0', 'before=-3', 'before=1.5']) {
      const res = await send(app, 'GET', `/v1/admin/changes?${query}`, DEMO_DEFAULTS.adminKey)
      expect({ query, status: res.status, code: res.body.error?.code }).toEqual({ query, status: 400, code: 'invalid_query' })
    }
  })
})
