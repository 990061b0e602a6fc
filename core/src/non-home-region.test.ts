import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_DEFAULTS, loadConfig } from './config.js'
import { createLogger } from './logger.js'
import { startCore } from './main.js'

/**
 * A core replica outside the home region (REGION != HOME_REGION, docs/regions.md) writes nothing
 * that has one writer fleet-wide: no T+1 scheduler or billing job executor (it never joins the
 * billing lease), no demo tenant and no bootstrap admin key (its tenants are the mirrored topic's),
 * and it says so in one structured line at start.
 */
const dir = mkdtempSync(join(tmpdir(), 'adc-nonhome-'))
const BOOTSTRAP = 'adm_bootstrap_key_for_the_non_home_test'
const lines: Array<Record<string, unknown>> = []
let core: Awaited<ReturnType<typeof startCore>>

beforeAll(async () => {
  const out = new PassThrough()
  out.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>)
  })
  const config = loadConfig({
    ADC_ENV: 'development', DATA_DIR: dir, CORE_PORT: '0', INTERNAL_PORT: '0', ICEBERG_ENABLED: 'false', LOG_LEVEL: 'info',
    REGION: 'us', HOME_REGION: 'eu', ADC_BOOTSTRAP_ADMIN_KEY: BOOTSTRAP,
  })
  core = await startCore(config, { logger: createLogger({ level: 'info', destination: out }) })
})

afterAll(async () => {
  await core?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('core started outside the home region', () => {
  it('seeds no demo tenant, applies no bootstrap admin key, joins no billing lease, and says so once', async () => {
    const me = (key: string) => core.app.request('/v1/me', { headers: { authorization: `Bearer ${key}` } })
    expect((await me(DEV_DEFAULTS.DEMO_ADMIN_KEY)).status).toBe(401)
    expect((await me(BOOTSTRAP)).status).toBe(401)
    // One embedded process alone in its group gets a lease at once: wait past that.
    await new Promise((r) => setTimeout(r, 1_500))
    const leases = lines.filter((l) => l.msg === 'lease acquired').map((l) => l.lease)
    expect(leases.filter((l) => String(l).endsWith('billing-scheduler'))).toEqual([])
    const said = lines.filter((l) => l.event === 'non_home_region')
    expect(said).toHaveLength(1)
    expect(said[0]).toMatchObject({ region: 'us', homeRegion: 'eu', billingJobs: false, tenantSeeding: false })
  })
})
