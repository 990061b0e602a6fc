import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT, startCore, startProcess, type CoreHandle } from './system.js'

/**
 * Core as a process, restarted on the same DATA_DIR: what a development or production start does
 * with the tenant store (demo keys, development keys left in production, the first admin key).
 */
const PROD_SECRETS = { EDGE_SYNC_KEY: 'edge_sync_e2e_0123456789', REST_PROXY_USER: 'edge_e2e', REST_PROXY_PASSWORD: 'proxy-secret-e2e-0123456789' }
const dirs: string[] = []
let core: CoreHandle | undefined

function dataDir(): string {
  mkdirSync(join(ROOT, '.cache', 'e2e'), { recursive: true })
  const dir = mkdtempSync(join(ROOT, '.cache', 'e2e', 'tenants-'))
  dirs.push(dir)
  return dir
}

async function me(key: string): Promise<number> {
  const res = await fetch(`${core!.url}/v1/me`, { headers: { authorization: `Bearer ${key}` } })
  await res.arrayBuffer()
  return res.status
}

async function restart(env: Record<string, string>, dir: string): Promise<void> {
  await core?.stop()
  core = await startCore({ ICEBERG_ENABLED: 'false', ...env }, dir)
}

afterAll(async () => {
  await core?.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('a development restart with a changed DEMO_PUBLISHER_KEY', () => {
  it('makes the old key 401 and the new one work', async () => {
    const dir = dataDir()
    await restart({}, dir)
    expect(await me('pk_demo_publisher_dev')).toBe(200)
    await restart({ DEMO_PUBLISHER_KEY: 'pk_demo_rotated_e2e_0123' }, dir)
    expect(await me('pk_demo_publisher_dev')).toBe(401)
    expect(await me('pk_demo_rotated_e2e_0123')).toBe(200)
    await core!.stop()
    core = undefined
  })
})

describe('a production start', () => {
  it('refuses a store first used in development, naming the keys and what to do', async () => {
    const dir = dataDir()
    await restart({}, dir)
    await core!.stop()
    core = undefined
    const proc = startProcess(process.execPath, ['--import', 'tsx', 'core/src/main.ts'], {
      ADC_ENV: 'production', DATA_DIR: dir, CORE_PORT: '0', INTERNAL_PORT: '0', KAFKA_BROKERS: '', ...PROD_SECRETS,
    })
    const code = await new Promise<number | null>((r) => proc.child.once('exit', (c) => r(c)))
    expect(code).toBe(1)
    expect(proc.output()).toContain('DEMO_ADMIN_KEY')
    expect(proc.output()).toContain('fresh DATA_DIR')
  })

  it('takes its first admin key from ADC_BOOTSTRAP_ADMIN_KEY once, and from `npm run admin -- create-key`', async () => {
    const dir = dataDir()
    const first = 'admin_bootstrap_e2e_0123456789abcdef'
    await restart({ ADC_ENV: 'production', ...PROD_SECRETS, ADC_BOOTSTRAP_ADMIN_KEY: first }, dir)
    expect(await me(first)).toBe(200)
    expect(await me('admin_demo_dev')).toBe(401)
    expect(await me('pk_demo_publisher_dev')).toBe(401)
    await core!.stop()
    core = undefined

    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/admin.ts', 'create-key'], { cwd: ROOT, env: { ...process.env, DATA_DIR: dir, KAFKA_BROKERS: '' } })
    const created = stdout.trim()
    expect(created).toMatch(/^admin_[A-Za-z0-9_-]{32}$/)

    const second = 'admin_second_bootstrap_e2e_0123456789'
    await restart({ ADC_ENV: 'production', ...PROD_SECRETS, ADC_BOOTSTRAP_ADMIN_KEY: second, LOG_LEVEL: 'warn' }, dir)
    expect(await me(second)).toBe(401)
    expect(await me(first)).toBe(200)
    expect(await me(created)).toBe(200)
    expect(core!.output()).toContain('bootstrap_admin_key_ignored')
  })
})
