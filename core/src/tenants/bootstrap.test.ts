import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError } from '../config.js'
import { createLogger } from '../logger.js'
import { createAdminKey, developmentKeysIn, prepareTenantStore } from './bootstrap.js'
import { DEMO_DEFAULTS, hashApiKey, openTenantStore, type TenantStore } from './tenant-store.js'

const dirs: string[] = []
const stores: TenantStore[] = []
function open(dir = mkdtempSync(join(tmpdir(), 'adc-bootstrap-'))) {
  if (!dirs.includes(dir)) dirs.push(dir)
  const store = openTenantStore({ dir })
  stores.push(store)
  return { store, dir }
}
async function reopen(store: TenantStore, dir: string) {
  await store.close()
  return open(dir).store
}
function capture() {
  const stream = new PassThrough()
  const lines: Array<Record<string, unknown>> = []
  stream.on('data', (b: Buffer) => { for (const l of b.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>) })
  return { logger: createLogger({ level: 'info', destination: stream }), lines }
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined)
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const dev = {
  ADC_ENV: 'development' as const,
  DEMO_PUBLISHER_KEY: DEMO_DEFAULTS.publisherKey,
  DEMO_ADVERTISER_KEY: DEMO_DEFAULTS.advertiserKey,
  DEMO_SIGNING_SECRET: DEMO_DEFAULTS.signingSecret,
  DEMO_ADMIN_KEY: DEMO_DEFAULTS.adminKey,
  ADC_BOOTSTRAP_ADMIN_KEY: undefined,
}
const prod = { ...dev, ADC_ENV: 'production' as const }
const BOOT = 'admin_bootstrap_0123456789abcdef'

describe('a production start', () => {
  it('seeds nothing on a fresh store', async () => {
    const { store } = open()
    await prepareTenantStore(store, prod, capture().logger)
    expect(store.listPublishers()).toEqual([])
    expect(store.listAdvertisers()).toEqual([])
    expect(store.principalForKey(DEMO_DEFAULTS.adminKey)).toBeUndefined()
    expect(store.hasAdminKey()).toBe(false)
  })

  it('refuses a store first used in development, naming the keys and what to do', async () => {
    const { store, dir } = open()
    await prepareTenantStore(store, dev, capture().logger)
    const again = await reopen(store, dir)
    const start = prepareTenantStore(again, prod, capture().logger)
    await expect(start).rejects.toThrow(ConfigError)
    await expect(prepareTenantStore(again, prod, capture().logger)).rejects.toThrow(
      /DEMO_ADMIN_KEY, DEMO_ADVERTISER_KEY, DEMO_PUBLISHER_KEY, DEMO_PUBLIC_KEY, DEMO_SIGNING_SECRET, DEMO_REQUEST_SIGNING_SECRET.*fresh DATA_DIR/)
  })

  it('accepts that store once a development start replaced every demo key with a new secret', async () => {
    const { store, dir } = open()
    await prepareTenantStore(store, dev, capture().logger)
    const rotated = { ...dev, DEMO_PUBLISHER_KEY: 'pk_rotated_0123456789', DEMO_ADVERTISER_KEY: 'ak_rotated_0123456789', DEMO_SIGNING_SECRET: 'sig_rotated_0123456789', DEMO_ADMIN_KEY: 'admin_rotated_0123456789', DEMO_PUBLIC_KEY: 'pkpub_rotated_0123456789', DEMO_REQUEST_SIGNING_SECRET: 'req_rotated_0123456789' }
    await prepareTenantStore(store, rotated, capture().logger)
    expect(developmentKeysIn(store)).toEqual([])
    const again = await reopen(store, dir)
    await prepareTenantStore(again, prod, capture().logger)
    expect(again.principalForKey('admin_rotated_0123456789')).toEqual({ kind: 'admin', id: 'admin_demo' })
  })
})

describe('the bootstrap admin key', () => {
  it('is applied once, to a store without an admin key, and ignored with a warning afterwards', async () => {
    const { store, dir } = open()
    const first = capture()
    await prepareTenantStore(store, { ...prod, ADC_BOOTSTRAP_ADMIN_KEY: BOOT }, first.logger)
    expect(store.principalForKey(BOOT)).toEqual({ kind: 'admin', id: 'admin' })

    const again = await reopen(store, dir)
    const second = capture()
    const other = 'admin_someone_else_0123456789'
    await prepareTenantStore(again, { ...prod, ADC_BOOTSTRAP_ADMIN_KEY: other }, second.logger)
    expect(again.principalForKey(other)).toBeUndefined()
    expect(again.principalForKey(BOOT)?.kind).toBe('admin')
    await new Promise((r) => setImmediate(r))
    expect(second.lines.some((l) => l.event === 'bootstrap_admin_key_ignored' && l.level === 40)).toBe(true)
  })

  it('is not needed once the CLI created a key; a store with none warns at start', async () => {
    const { store } = open()
    const log = capture()
    await prepareTenantStore(store, prod, log.logger)
    await new Promise((r) => setImmediate(r))
    expect(log.lines.some((l) => l.event === 'no_admin_key')).toBe(true)
    const key = await createAdminKey(store)
    expect(key).toMatch(/^admin_[A-Za-z0-9_-]{32}$/)
    expect(store.principalForKey(key)).toEqual({ kind: 'admin', id: 'admin' })
    expect(store.hasAdminKey()).toBe(true)
  })
})

describe('a development start', () => {
  it('makes the demo keys exactly the DEMO_* values: a changed key replaces the old one', async () => {
    const { store, dir } = open()
    await prepareTenantStore(store, dev, capture().logger)
    const again = await reopen(store, dir)
    const changed = { ...dev, DEMO_PUBLISHER_KEY: 'pk_demo_changed_123', DEMO_ADVERTISER_KEY: 'ak_demo_changed_123', DEMO_ADMIN_KEY: 'admin_demo_changed', DEMO_SIGNING_SECRET: 'demo-secret-changed' }
    await prepareTenantStore(again, changed, capture().logger)
    expect(again.principalForKey(DEMO_DEFAULTS.publisherKey)).toBeUndefined()
    expect(again.principalForKey(DEMO_DEFAULTS.advertiserKey)).toBeUndefined()
    expect(again.principalForKey(DEMO_DEFAULTS.adminKey)).toBeUndefined()
    expect(again.principalForKey('pk_demo_changed_123')).toEqual({ kind: 'publisher', id: 'pub_demo' })
    expect(again.principalForKey('ak_demo_changed_123')).toEqual({ kind: 'advertiser', id: 'adv_demo' })
    expect(again.principalForKey('admin_demo_changed')).toEqual({ kind: 'admin', id: 'admin_demo' })
    const pub = again.edgeConfig().publishers.find((p) => p.id === 'pub_demo')
    expect(pub?.apiKeyHashes).toEqual([hashApiKey('pk_demo_changed_123')])
    expect(pub?.signingKeys).toEqual({ demo: 'demo-secret-changed' })
  })

  it('leaves the store unchanged when restarted with the same keys', async () => {
    const { store } = open()
    await prepareTenantStore(store, dev, capture().logger)
    const v = store.configVersion()
    await prepareTenantStore(store, dev, capture().logger)
    expect(store.configVersion()).toBe(v)
  })
})
