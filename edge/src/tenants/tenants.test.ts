import { describe, expect, it } from 'vitest'
import { proxyUrl } from '../../test/helpers.js'
import { sha256Hex } from '../crypto.js'
import { edgeConfigSchema } from '@adc/schemas'
import { ConfigUnavailableError, TenantIndex, TenantSource } from './tenants.js'

async function setConfig(status: number, body: unknown): Promise<void> {
  await (await fetch(`${proxyUrl()}/__config`, { method: 'POST', body: JSON.stringify({ status, body }) })).arrayBuffer()
}
const configCalls = async () => ((await (await fetch(`${proxyUrl()}/__received`)).json()) as { configCalls: number }).configCalls

describe('TenantSource pulling from core', () => {
  it('fetches with the sync key, caches for the TTL, keeps the last good config when core fails', async () => {
    await (await fetch(`${proxyUrl()}/__reset`, { method: 'POST' })).arrayBuffer()
    const config = { version: 3, campaignIds: [], publishers: [{ id: 'pub_x', apiKeyHashes: [await sha256Hex('pk_x')], signingKeys: { kx: 's' }, rateLimit: { perSecond: 5, burst: 5 }, active: true }] }
    await setConfig(200, config)
    let now = 1_000_000
    const source = new TenantSource({ coreUrl: proxyUrl(), syncKey: 'edge_sync_test', ttlMs: 30_000, now: () => now })
    const first = await source.get()
    expect((await first.byApiKey('pk_x'))?.publisher.id).toBe('pub_x')
    expect(first.secretFor('kx')).toBe('s')
    await source.get()
    expect(await configCalls()).toBe(1)

    await setConfig(500, { error: 'core restarting' })
    now += 31_000
    const stale = await source.get()
    expect(stale.config.version).toBe(3)
    expect(await configCalls()).toBe(2)

    await setConfig(200, { ...config, version: 4 })
    now += 31_000
    expect((await source.get()).config.version).toBe(4)
  })

  it('never makes a request wait on another request\'s pull: stale config meanwhile, an abandoned pull forgotten, a cold waiter under its own timer', async () => {
    const config = { version: 7, campaignIds: [], publishers: [] }
    let now = 1_000_000
    let calls = 0
    // A pull that never settles stands for one whose request the runtime cancelled.
    let answer: 'ok' | 'hang' = 'ok'
    const fetcher = (async () => {
      calls++
      if (answer === 'hang') return new Promise<Response>(() => {})
      return new Response(JSON.stringify(config), { headers: { 'content-type': 'application/json' } })
    }) as unknown as typeof fetch
    const source = new TenantSource({ coreUrl: 'http://core.invalid', syncKey: 'k', ttlMs: 1000, abandonAfterMs: 200, fetcher, now: () => now })
    expect((await source.get()).config.version).toBe(7)

    answer = 'hang'
    now += 2000
    void source.get() // starts the refresh that never settles
    expect(calls).toBe(2)
    // Others answer at once from the last good config, without a second pull.
    expect((await source.get()).config.version).toBe(7)
    expect(calls).toBe(2)
    // Once the stuck pull is older than abandonAfterMs, the next request pulls again.
    answer = 'ok'
    now += 300
    expect((await source.get()).config.version).toBe(7)
    expect(calls).toBe(3)

    // Cold: no config yet, a pull in flight that never settles: the waiter fails under its own timer.
    answer = 'hang'
    const cold = new TenantSource({ coreUrl: 'http://core.invalid', syncKey: 'k', abandonAfterMs: 100, fetcher, now: () => now })
    void cold.get()
    await expect(cold.get()).rejects.toBeInstanceOf(ConfigUnavailableError)
  })

  it('fails with ConfigUnavailableError when no config was ever loaded, and refuses a wrong sync key', async () => {
    await setConfig(200, { version: 1, campaignIds: [], publishers: [] })
    const wrongKey = new TenantSource({ coreUrl: proxyUrl(), syncKey: 'wrong' })
    await expect(wrongKey.get()).rejects.toBeInstanceOf(ConfigUnavailableError)
    await setConfig(200, { version: 'x' })
    await expect(new TenantSource({ coreUrl: proxyUrl(), syncKey: 'edge_sync_test' }).get()).rejects.toBeInstanceOf(ConfigUnavailableError)
    await expect(new TenantSource({ coreUrl: 'http://127.0.0.1:9', syncKey: 'k' }).get()).rejects.toBeInstanceOf(ConfigUnavailableError)
  })

  it('uses static JSON without asking core', async () => {
    const source = new TenantSource({ staticJson: JSON.stringify({ version: 9, campaignIds: [], publishers: [] }), coreUrl: 'http://127.0.0.1:9', syncKey: 'k' })
    expect((await source.get()).config.version).toBe(9)
    await expect(new TenantSource({ staticJson: '{"version":', coreUrl: 'http://127.0.0.1:9', syncKey: 'k' }).get()).rejects.toBeInstanceOf(ConfigUnavailableError)
    await expect(new TenantSource({ staticJson: '{"publishers":1}', coreUrl: 'http://127.0.0.1:9', syncKey: 'k' }).get()).rejects.toBeInstanceOf(ConfigUnavailableError)
  })
})

describe('TenantIndex', () => {
  const pub = (id: string, over: Record<string, unknown> = {}) => ({
    id, apiKeyHashes: [], publicKeyHashes: [], signingKeys: {}, requestSigningKeys: {}, appRequestSigningKeys: {}, rateLimit: { perSecond: 5, burst: 5 }, active: true, ...over,
  })

  it('refuses a signing key id or API key claimed by two publishers for both, and logs it', async () => {
    const h = await sha256Hex('pk_shared')
    const logged: unknown[] = []
    const index = new TenantIndex(edgeConfigSchema.parse({
      version: 1, campaignIds: [],
      publishers: [
        pub('pub_a', { signingKeys: { k1: 'a', ka: 'a2' }, apiKeyHashes: [h] }),
        pub('pub_b', { requestSigningKeys: { k1: 'b' }, publicKeyHashes: [h] }),
      ],
    }), (message, detail) => logged.push({ message, detail }))
    expect(index.secretFor('k1')).toBeUndefined()
    expect(index.signingKey('k1', 'request')).toBeUndefined()
    expect(index.secretFor('ka')).toBe('a2')
    expect(await index.byApiKey('pk_shared')).toBeUndefined()
    expect(index.collisions).toEqual({ keyIds: ['k1'], keyHashes: [h] })
    expect(logged).toHaveLength(2)
    expect(JSON.stringify(logged)).toContain('pub_a:token')
    expect(JSON.stringify(logged)).toContain('pub_b:request')
  })

  it('tells key scopes and purposes apart, and knows the booked campaigns and whom they are booked with', async () => {
    const index = new TenantIndex(edgeConfigSchema.parse({
      version: 1, campaignIds: ['cmp_a', 'cmp_only'], campaignPublishers: { cmp_only: ['pub_a'] },
      publishers: [pub('pub_a', { apiKeyHashes: [await sha256Hex('pk_s')], publicKeyHashes: [await sha256Hex('pk_p')], signingKeys: { t1: 'ts' }, requestSigningKeys: { r1: 'rs' } })],
    }))
    expect((await index.byApiKey('pk_s'))?.scope).toBe('server')
    expect((await index.byApiKey('pk_p'))?.scope).toBe('public')
    expect(index.secretFor('t1')).toBe('ts')
    expect(index.secretFor('r1')).toBeUndefined()
    expect(index.signingKey('r1', 'request')?.secret).toBe('rs')
    expect(index.signingKey('t1', 'request')).toBeUndefined()
    expect(index.signingKey('r1', 'request')?.scope).toBe('server')
    expect([index.isBooked('cmp_a', 'pub_a'), index.isBooked('cmp_a', 'pub_z'), index.isBooked('cmp_b', 'pub_a')]).toEqual([true, true, false])
    // Booked with pub_a only: another publisher's events for it are not booked.
    expect([index.isBooked('cmp_only', 'pub_a'), index.isBooked('cmp_only', 'pub_z')]).toEqual([true, false])
  })

  it('indexes app-scope request keys with their scope, never as token keys, and refuses a key id listed under both scopes', async () => {
    const logged: unknown[] = []
    const index = new TenantIndex(edgeConfigSchema.parse({
      version: 1, campaignIds: [],
      publishers: [pub('pub_a', { requestSigningKeys: { r1: 'rs', both: 'x' }, appRequestSigningKeys: { a1: 'as', both: 'y' } })],
    }), (message, detail) => logged.push({ message, detail }))
    expect(index.signingKey('a1', 'request')).toMatchObject({ secret: 'as', scope: 'app' })
    expect(index.signingKey('r1', 'request')).toMatchObject({ secret: 'rs', scope: 'server' })
    expect(index.secretFor('a1')).toBeUndefined()
    expect(index.signingKey('both', 'request')).toBeUndefined()
    expect(JSON.stringify(logged)).toContain('pub_a:app_request')
  })

  it('drops a revoked key with the next pull after the TTL', async () => {
    const hash = await sha256Hex('pk_rev')
    await setConfig(200, { version: 1, campaignIds: [], publishers: [pub('pub_r', { apiKeyHashes: [hash], signingKeys: { kr: 's' } })] })
    let now = 5_000_000
    const source = new TenantSource({ coreUrl: proxyUrl(), syncKey: 'edge_sync_test', ttlMs: 1000, now: () => now })
    expect((await (await source.get()).byApiKey('pk_rev'))?.publisher.id).toBe('pub_r')
    await setConfig(200, { version: 2, campaignIds: [], publishers: [pub('pub_r')] })
    now += 1001
    const after = await source.get()
    expect(await after.byApiKey('pk_rev')).toBeUndefined()
    expect(after.secretFor('kr')).toBeUndefined()
  })
})
