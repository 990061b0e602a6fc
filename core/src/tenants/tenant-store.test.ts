import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  DEMO_DEFAULTS,
  TenantConflictError,
  TenantReferenceError,
  hashApiKey,
  openTenantStore,
  seedDemoTenant,
  type TenantStore,
} from './tenant-store.js'

const dirs: string[] = []
const stores: TenantStore[] = []
function fresh(dir = mkdtempSync(join(tmpdir(), 'adc-tenants-'))) {
  dirs.push(dir)
  const store = openTenantStore({ dir })
  stores.push(store)
  return { store, dir }
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined)
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('tenant store', () => {
  it('seeds the demo tenant idempotently and resolves each key to its principal', async () => {
    const { store } = fresh()
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
    const { store } = fresh()
    await seedDemoTenant(store, DEMO_DEFAULTS)
    const cfg = store.edgeConfig()
    expect(cfg.publishers).toEqual([
      {
        id: 'pub_demo',
        apiKeyHashes: [hashApiKey(DEMO_DEFAULTS.publisherKey)],
        signingKeys: { demo: DEMO_DEFAULTS.signingSecret },
        rateLimit: { perSecond: 500, burst: 1000 },
        active: true,
      },
    ])
    expect(JSON.stringify(store.listPublishers())).not.toContain(DEMO_DEFAULTS.publisherKey)
  })

  it('survives a restart and bumps the config version on every change', async () => {
    const { store, dir } = fresh()
    const before = store.configVersion()
    const { apiKey } = await store.createAdvertiser({ id: 'adv_x', name: 'X' })
    await store.createCampaign({ id: 'cmp_x', advertiserId: 'adv_x', pricing: { model: 'cpc', priceMicros: 10 } })
    const pub = await store.createPublisher({ id: 'pub_x', name: 'P' })
    expect(store.configVersion()).toBe(before + 3)
    await store.close()
    stores.pop()
    const reopened = openTenantStore({ dir })
    stores.push(reopened)
    expect(reopened.principalForKey(apiKey)).toEqual({ kind: 'advertiser', id: 'adv_x' })
    expect(reopened.principalForKey(pub.apiKey)).toEqual({ kind: 'publisher', id: 'pub_x' })
    expect(reopened.getCampaign('cmp_x')?.advertiserId).toBe('adv_x')
    expect(reopened.edgeConfig().publishers[0]?.signingKeys).toEqual({ k1: pub.signingSecret })
  })

  it('refuses duplicates and dangling references without changing anything', async () => {
    const { store } = fresh()
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
    const { store } = fresh()
    const { apiKey: oldKey } = await store.createPublisher({ id: 'pub_r', name: 'R' })
    const { apiKey: newKey } = await store.addPublisherApiKey('pub_r')
    expect(store.principalForKey(newKey)).toEqual({ kind: 'publisher', id: 'pub_r' })
    await expect(store.revokePublisherApiKey('pub_r', 'f'.repeat(64))).rejects.toBeInstanceOf(TenantReferenceError)
    await store.revokePublisherApiKey('pub_r', hashApiKey(oldKey))
    expect(store.principalForKey(oldKey)).toBeUndefined()
    await expect(store.revokePublisherApiKey('pub_r', hashApiKey(newKey))).rejects.toBeInstanceOf(TenantConflictError)
    const { keyId, secret } = await store.addSigningKey('pub_r')
    expect(keyId).toBe('k2')
    await expect(store.addSigningKey('pub_r', { keyId: 'k2' })).rejects.toBeInstanceOf(TenantConflictError)
    const v = store.configVersion()
    await store.updatePublisher('pub_r', { rateLimit: { perSecond: 5, burst: 9 }, active: false })
    expect(store.configVersion()).toBe(v + 1)
    const edge = store.edgeConfig().publishers.find((p) => p.id === 'pub_r')!
    expect(edge).toMatchObject({ apiKeyHashes: [hashApiKey(newKey)], rateLimit: { perSecond: 5, burst: 9 }, active: false })
    expect(edge.signingKeys.k2).toBe(secret)
    await expect(store.updatePublisher('pub_missing', { active: true })).rejects.toBeInstanceOf(TenantReferenceError)
  })
})
