/**
 * The TenantStore contract suite: the local store and the fleet's shared store run the same tests.
 * Imported by tests and benchmarks only.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { edgeConfigSchema } from '@adc/schemas'
import {
  DEMO_DEFAULTS,
  SigningKeyScopeError,
  TenantConflictError,
  TenantReferenceError,
  bookedWith,
  hashApiKey,
  seedDemoTenant,
  type TenantStore,
} from '../tenants/tenant-store.js'

/**
 * The TenantStore contract, run against every implementation: the store of one process
 * (tenant-store.test.ts) and the shared store over the log (shared-tenant-store.test.ts).
 * `open(dir)` opens (or reopens) the store whose view lives in `dir`.
 */
export function tenantStoreSuite(open: (dir: string) => Promise<TenantStore>): void {
  const dirs: string[] = []
  const stores: TenantStore[] = []
  async function fresh(dir = mkdtempSync(join(tmpdir(), 'adc-tenants-'))) {
    dirs.push(dir)
    const store = await open(dir)
    stores.push(store)
    return { store, dir }
  }

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined)
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  describe('tenant store', () => {
    it('seeds the demo tenant idempotently and resolves each key to its principal', async () => {
      const { store } = await fresh()
      await seedDemoTenant(store, DEMO_DEFAULTS)
      const v1 = store.configVersion()
      await seedDemoTenant(store, DEMO_DEFAULTS)
      expect(store.configVersion()).toBe(v1)
      expect(store.principalForKey(DEMO_DEFAULTS.adminKey)).toEqual({ kind: 'admin', id: 'admin_demo' })
      expect(store.principalForKey(DEMO_DEFAULTS.advertiserKey)).toEqual({ kind: 'advertiser', id: 'adv_demo' })
      expect(store.principalForKey(DEMO_DEFAULTS.publisherKey)).toEqual({ kind: 'publisher', id: 'pub_demo' })
      expect(store.principalForKey('nope')).toBeUndefined()
      expect(store.listCampaigns({ advertiserId: 'adv_demo' }).map((c) => c.id).sort()).toEqual(['cmp_demo_cpc', 'cmp_demo_cpm'])
      expect(store.getCampaign('cmp_demo_cpm')?.pricing).toEqual({ model: 'cpm', priceMicros: 2_000_000 })
    })

    it('keeps only hashes of API keys and serves the edge config with signing keys and rate limits', async () => {
      const { store } = await fresh()
      await seedDemoTenant(store, DEMO_DEFAULTS)
      const cfg = store.edgeConfig()
      expect(cfg.publishers).toEqual([
        {
          id: 'pub_demo',
          apiKeyHashes: [hashApiKey(DEMO_DEFAULTS.publisherKey)],
          publicKeyHashes: [hashApiKey(DEMO_DEFAULTS.publicKey)],
          signingKeys: { demo: DEMO_DEFAULTS.signingSecret },
          // The demo request key is an app's (README: apps sign with it; clicks carry their token).
          requestSigningKeys: {},
          appRequestSigningKeys: { demo_request: DEMO_DEFAULTS.requestSigningSecret },
          rateLimit: { perSecond: 500, burst: 1000 },
          active: true,
        },
      ])
      expect(JSON.stringify(store.listPublishers())).not.toContain(DEMO_DEFAULTS.publisherKey)
      expect(JSON.stringify(store.listPublishers())).not.toContain(DEMO_DEFAULTS.publicKey)
    })

    it('survives a restart and bumps the config version on every change', async () => {
      const { store, dir } = await fresh()
      const before = store.configVersion()
      const { apiKey } = await store.createAdvertiser({ id: 'adv_x', name: 'X' })
      await store.createCampaign({ id: 'cmp_x', advertiserId: 'adv_x', pricing: { model: 'cpc', priceMicros: 10 } })
      const pub = await store.createPublisher({ id: 'pub_x', name: 'P' })
      expect(store.configVersion()).toBe(before + 3)
      await store.close()
      stores.pop()
      const reopened = await open(dir)
      stores.push(reopened)
      expect(reopened.principalForKey(apiKey)).toEqual({ kind: 'advertiser', id: 'adv_x' })
      expect(reopened.principalForKey(pub.apiKey)).toEqual({ kind: 'publisher', id: 'pub_x' })
      expect(reopened.getCampaign('cmp_x')?.advertiserId).toBe('adv_x')
      expect(reopened.edgeConfig().publishers[0]?.signingKeys).toEqual({ [pub.signingKeyId]: pub.signingSecret })
    })

    it('catches up with its own writes at once: catchUp answers true and the version stands', async () => {
      const { store } = await fresh()
      await store.createAdvertiser({ id: 'adv_cu', name: 'CU' })
      await store.createCampaign({ id: 'cmp_cu', advertiserId: 'adv_cu', pricing: { model: 'cpm', priceMicros: 1 } })
      const version = store.configVersion()
      expect(await store.catchUp(1_000)).toBe(true)
      expect(store.getCampaign('cmp_cu')).toBeDefined()
      expect(store.configVersion()).toBe(version)
    })

    it('refuses duplicates and dangling references without changing anything', async () => {
      const { store } = await fresh()
      await store.createAdvertiser({ id: 'adv_a', name: 'A' })
      const v = store.configVersion()
      await expect(store.createAdvertiser({ id: 'adv_a', name: 'again' })).rejects.toBeInstanceOf(TenantConflictError)
      await expect(
        store.createCampaign({ id: 'cmp_a', advertiserId: 'adv_missing', pricing: { model: 'cpm', priceMicros: 1 } }),
      ).rejects.toBeInstanceOf(TenantReferenceError)
      expect(store.configVersion()).toBe(v)
      expect(store.getCampaign('cmp_a')).toBeUndefined()
      expect(store.getAdvertiser('adv_a')?.name).toBe('A')
    })

    it('rotates publisher keys and secrets and changes limits, each visible in the edge config', async () => {
      const { store } = await fresh()
      const { apiKey: oldKey, publicKey } = await store.createPublisher({ id: 'pub_r', name: 'R' })
      await store.revokePublisherApiKey('pub_r', hashApiKey(publicKey))
      const { apiKey: newKey } = await store.addPublisherApiKey('pub_r')
      expect(store.principalForKey(newKey)).toEqual({ kind: 'publisher', id: 'pub_r' })
      await expect(store.revokePublisherApiKey('pub_r', 'f'.repeat(64))).rejects.toBeInstanceOf(TenantReferenceError)
      await store.revokePublisherApiKey('pub_r', hashApiKey(oldKey))
      expect(store.principalForKey(oldKey)).toBeUndefined()
      await expect(store.revokePublisherApiKey('pub_r', hashApiKey(newKey))).rejects.toBeInstanceOf(TenantConflictError)
      const { keyId, secret } = await store.addSigningKey('pub_r')
      await expect(store.addSigningKey('pub_r', { keyId })).rejects.toBeInstanceOf(TenantConflictError)
      const v = store.configVersion()
      await store.updatePublisher('pub_r', { rateLimit: { perSecond: 5, burst: 9 }, active: false })
      expect(store.configVersion()).toBe(v + 1)
      const edge = store.edgeConfig().publishers.find((p) => p.id === 'pub_r')!
      expect(edge).toMatchObject({ apiKeyHashes: [hashApiKey(newKey)], rateLimit: { perSecond: 5, burst: 9 }, active: false })
      expect(edge.signingKeys[keyId]).toBe(secret)
      await expect(store.updatePublisher('pub_missing', { active: true })).rejects.toBeInstanceOf(TenantReferenceError)
    })
  })

  describe('publisher keys', () => {
    it('gives every new publisher its own signing key ids, so two publishers never share one', async () => {
      const { store } = await fresh()
      const a = await store.createPublisher({ id: 'pub_a', name: 'A' })
      const b = await store.createPublisher({ id: 'pub_b', name: 'B' })
      const ids = [a.signingKeyId, a.requestSigningKeyId, b.signingKeyId, b.requestSigningKeyId]
      expect(new Set(ids).size).toBe(4)
      for (const id of ids) expect(id).toMatch(/^k_[a-z2-7]{16}$/)
      const cfg = store.edgeConfig()
      const pa = cfg.publishers.find((p) => p.id === 'pub_a')!
      expect(pa.signingKeys).toEqual({ [a.signingKeyId]: a.signingSecret })
      expect(pa.appRequestSigningKeys).toEqual({ [a.requestSigningKeyId]: a.requestSigningSecret })
      expect(pa.requestSigningKeys).toEqual({})
      expect(pa.apiKeyHashes).toEqual([hashApiKey(a.apiKey)])
      expect(pa.publicKeyHashes).toEqual([hashApiKey(a.publicKey)])
      expect(store.principalForKey(a.publicKey)).toEqual({ kind: 'publisher', id: 'pub_a' })
    })

    it('refuses an explicit key id that any publisher already holds, with nothing changed', async () => {
      const { store } = await fresh()
      await store.createPublisher({ id: 'pub_a', name: 'A', signingKeyId: 'shared' })
      const v = store.configVersion()
      await expect(store.createPublisher({ id: 'pub_b', name: 'B', signingKeyId: 'shared' })).rejects.toBeInstanceOf(TenantConflictError)
      expect(store.getPublisher('pub_b')).toBeUndefined()
      await store.createPublisher({ id: 'pub_c', name: 'C' })
      await expect(store.addSigningKey('pub_c', { keyId: 'shared' })).rejects.toBeInstanceOf(TenantConflictError)
      await expect(store.addSigningKey('pub_c', { keyId: 'shared', purpose: 'request' })).rejects.toBeInstanceOf(TenantConflictError)
      expect(store.configVersion()).toBe(v + 1)
    })

    it('keeps old and new keys valid while rotating, and revokes each kind by itself', async () => {
      const { store } = await fresh()
      const p = await store.createPublisher({ id: 'pub_r', name: 'R' })
      const added = await store.addSigningKey('pub_r', { purpose: 'request' })
      const token2 = await store.addSigningKey('pub_r')
      const pub2 = await store.addPublisherApiKey('pub_r', { scope: 'public' })
      let edge = store.edgeConfig().publishers[0]!
      expect(Object.keys(edge.appRequestSigningKeys).sort()).toEqual([added.keyId, p.requestSigningKeyId].sort())
      expect(Object.keys(edge.signingKeys).sort()).toEqual([token2.keyId, p.signingKeyId].sort())
      expect(edge.publicKeyHashes.sort()).toEqual([hashApiKey(pub2.apiKey), hashApiKey(p.publicKey)].sort())
      await store.revokeSigningKey('pub_r', p.signingKeyId)
      await store.revokeSigningKey('pub_r', p.requestSigningKeyId)
      await store.revokePublisherApiKey('pub_r', hashApiKey(p.publicKey))
      await expect(store.revokeSigningKey('pub_r', 'nope')).rejects.toBeInstanceOf(TenantReferenceError)
      edge = store.edgeConfig().publishers[0]!
      expect(edge.signingKeys).toEqual({ [token2.keyId]: token2.secret })
      expect(edge.appRequestSigningKeys).toEqual({ [added.keyId]: added.secret })
      expect(edge.publicKeyHashes).toEqual([hashApiKey(pub2.apiKey)])
      expect(store.principalForKey(p.publicKey)).toBeUndefined()
      // A revoked key id stays taken: a token signed with the old secret can never verify again.
      await expect(store.addSigningKey('pub_r', { keyId: p.signingKeyId })).rejects.toBeInstanceOf(TenantConflictError)
    })

    it('gives request keys a scope, app unless server is asked, serves each under its scope, and refuses a scope on a token key', async () => {
      const { store } = await fresh()
      const p = await store.createPublisher({ id: 'pub_s', name: 'S' })
      expect(p.requestSigningScope).toBe('app')
      const app = await store.addSigningKey('pub_s', { purpose: 'request' })
      const server = await store.addSigningKey('pub_s', { purpose: 'request', scope: 'server' })
      const token = await store.addSigningKey('pub_s')
      expect([app.scope, server.scope, token.scope]).toEqual(['app', 'server', undefined])
      const v = store.configVersion()
      await expect(store.addSigningKey('pub_s', { scope: 'server' })).rejects.toBeInstanceOf(SigningKeyScopeError)
      await expect(store.addSigningKey('pub_s', { purpose: 'token', scope: 'app' })).rejects.toBeInstanceOf(SigningKeyScopeError)
      expect(store.configVersion()).toBe(v)
      const edge = store.edgeConfig().publishers.find((x) => x.id === 'pub_s')!
      expect(edge.requestSigningKeys).toEqual({ [server.keyId]: server.secret })
      expect(edge.appRequestSigningKeys).toEqual({ [p.requestSigningKeyId]: p.requestSigningSecret, [app.keyId]: app.secret })
      expect(edge.signingKeys).toEqual({ [p.signingKeyId]: p.signingSecret, [token.keyId]: token.secret })
      // A publisher created with a server-scope request key; revoking a key forgets its scope.
      const q = await store.createPublisher({ id: 'pub_q', name: 'Q', requestSigningScope: 'server' })
      expect(store.edgeConfig().publishers.find((x) => x.id === 'pub_q')!.requestSigningKeys).toEqual({ [q.requestSigningKeyId]: q.requestSigningSecret })
      await store.revokeSigningKey('pub_s', server.keyId)
      expect(store.getPublisher('pub_s')!.signingKeyScopes).not.toHaveProperty(server.keyId)
      expect(store.edgeConfig().publishers.find((x) => x.id === 'pub_s')!.requestSigningKeys).toEqual({})
    })

    it('serves exactly the shared edge-config contract the edge parses: nothing missing, nothing it would drop', async () => {
      const { store } = await fresh()
      await seedDemoTenant(store, DEMO_DEFAULTS)
      const p = await store.createPublisher({ id: 'pub_c', name: 'C' })
      await store.addSigningKey('pub_c', { purpose: 'request' })
      await store.addPublisherApiKey('pub_c', { scope: 'public' })
      const served = JSON.parse(JSON.stringify(store.edgeConfig()))
      const parsed = edgeConfigSchema.safeParse(served)
      expect(parsed.success).toBe(true)
      expect(parsed.data).toEqual(served)
      expect(served.publishers.find((x: { id: string }) => x.id === 'pub_c').signingKeys).toEqual({ [p.signingKeyId]: p.signingSecret })
    })

    it('gives a demo publisher seeded without the public key and request secret both, once they are configured', async () => {
      const { store } = await fresh()
      const { publicKey: _p, requestSigningSecret: _r, ...older } = DEMO_DEFAULTS
      await seedDemoTenant(store, older)
      expect(store.principalForKey(DEMO_DEFAULTS.publicKey)).toBeUndefined()
      await seedDemoTenant(store, DEMO_DEFAULTS)
      const v = store.configVersion()
      await seedDemoTenant(store, DEMO_DEFAULTS)
      expect(store.configVersion()).toBe(v)
      const edge = store.edgeConfig().publishers.find((x) => x.id === 'pub_demo')!
      expect(edge.publicKeyHashes).toContain(hashApiKey(DEMO_DEFAULTS.publicKey))
      expect(edge.appRequestSigningKeys.demo_request).toBe(DEMO_DEFAULTS.requestSigningSecret)
      expect(edge.signingKeys.demo).toBe(DEMO_DEFAULTS.signingSecret)
    })

    it('lists every booked campaign for the edge', async () => {
      const { store } = await fresh()
      await seedDemoTenant(store, DEMO_DEFAULTS)
      expect(store.edgeConfig().campaignIds.sort()).toEqual(['cmp_demo_cpc', 'cmp_demo_cpm'])
    })

    it('books a campaign with named publishers only, serves that to the edge, and refuses an unknown publisher', async () => {
      const { store, dir } = await fresh()
      await seedDemoTenant(store, DEMO_DEFAULTS)
      await store.createPublisher({ id: 'pub_b', name: 'B' })
      const c = await store.createCampaign({ id: 'cmp_only', advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 1 }, publisherIds: ['pub_b', 'pub_demo', 'pub_b'] })
      expect(c.publisherIds).toEqual(['pub_b', 'pub_demo'])
      expect([bookedWith(c, 'pub_demo'), bookedWith(c, 'pub_x'), bookedWith(store.getCampaign('cmp_demo_cpm'), 'pub_x'), bookedWith(undefined, 'pub_demo')]).toEqual([true, false, true, false])
      // Only the restricted campaign is listed; the others stay booked with every publisher.
      expect(store.edgeConfig().campaignPublishers).toEqual({ cmp_only: ['pub_b', 'pub_demo'] })
      expect(edgeConfigSchema.parse(JSON.parse(JSON.stringify(store.edgeConfig()))).campaignPublishers).toEqual({ cmp_only: ['pub_b', 'pub_demo'] })
      const v = store.configVersion()
      await expect(
        store.createCampaign({ id: 'cmp_typo', advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 1 }, publisherIds: ['pub_demo', 'pub_nobody'] }),
      ).rejects.toBeInstanceOf(TenantReferenceError)
      expect(store.getCampaign('cmp_typo')).toBeUndefined()
      expect(store.configVersion()).toBe(v)
      await store.close()
      const reopened = await open(dir)
      stores.push(reopened)
      expect(reopened.getCampaign('cmp_only')?.publisherIds).toEqual(['pub_b', 'pub_demo'])
    })
  })
}
