import { describe, expect, it } from 'vitest'
import { proxyUrl } from '../../test/helpers.js'
import { sha256Hex } from './crypto.js'
import { ConfigUnavailableError, TenantSource } from './tenants.js'

async function setConfig(status: number, body: unknown): Promise<void> {
  await (await fetch(`${proxyUrl()}/__config`, { method: 'POST', body: JSON.stringify({ status, body }) })).arrayBuffer()
}
const configCalls = async () => ((await (await fetch(`${proxyUrl()}/__received`)).json()) as { configCalls: number }).configCalls

describe('TenantSource pulling from core', () => {
  it('fetches with the sync key, caches for the TTL, keeps the last good config when core fails', async () => {
    await (await fetch(`${proxyUrl()}/__reset`, { method: 'POST' })).arrayBuffer()
    const config = { version: 3, publishers: [{ id: 'pub_x', apiKeyHashes: [await sha256Hex('pk_x')], signingKeys: { kx: 's' }, rateLimit: { perSecond: 5, burst: 5 }, active: true }] }
    await setConfig(200, config)
    let now = 1_000_000
    const source = new TenantSource({ coreUrl: proxyUrl(), syncKey: 'edge_sync_test', ttlMs: 30_000, now: () => now })
    const first = await source.get()
    expect((await first.byApiKey('pk_x'))?.id).toBe('pub_x')
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

  it('fails with ConfigUnavailableError when no config was ever loaded, and refuses a wrong sync key', async () => {
    await setConfig(200, { version: 1, publishers: [] })
    const wrongKey = new TenantSource({ coreUrl: proxyUrl(), syncKey: 'wrong' })
    await expect(wrongKey.get()).rejects.toBeInstanceOf(ConfigUnavailableError)
    await setConfig(200, { version: 'x' })
    await expect(new TenantSource({ coreUrl: proxyUrl(), syncKey: 'edge_sync_test' }).get()).rejects.toBeInstanceOf(ConfigUnavailableError)
    await expect(new TenantSource({ coreUrl: 'http://127.0.0.1:9', syncKey: 'k' }).get()).rejects.toBeInstanceOf(ConfigUnavailableError)
  })

  it('uses static JSON without asking core', async () => {
    const source = new TenantSource({ staticJson: JSON.stringify({ version: 9, publishers: [] }), coreUrl: 'http://127.0.0.1:9', syncKey: 'k' })
    expect((await source.get()).config.version).toBe(9)
    await expect(new TenantSource({ staticJson: '{"version":', coreUrl: 'http://127.0.0.1:9', syncKey: 'k' }).get()).rejects.toBeInstanceOf(ConfigUnavailableError)
    await expect(new TenantSource({ staticJson: '{"publishers":1}', coreUrl: 'http://127.0.0.1:9', syncKey: 'k' }).get()).rejects.toBeInstanceOf(ConfigUnavailableError)
  })
})
