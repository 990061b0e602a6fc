/**
 * Test support for the billing side: one file's engine (openTestClickHouse, so the pinned-ClickHouse
 * project's HTTP stand-in still applies), a tenant store seeded with the demo tenant, and billing jobs
 * over both, opened in `beforeAll` and closed in `afterAll`. Each test file calls it once at its top
 * level and gets its own engine, store and directories (files run in separate workers; nothing is shared).
 * Imported by tests only.
 * @example
 * const env = useBillingEnv({ tempPrefix: 'adc-jobs-', clock: () => NOW })
 * it('closes a day', async () => { await env.billing.submitBilling(DAY, 'test') })
 */
import pino, { type Logger } from 'pino'
import { afterAll, beforeAll } from 'vitest'
import { createBillingJobs, type BillingJobs, type BillingJobsOptions } from '../billing/jobs.js'
import { migrate } from '../clickhouse/client.js'
import type { RetentionConfig } from '../clickhouse/retention.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type DemoSeed, type TenantStore } from '../tenants/tenant-store.js'
import { openTestClickHouse } from './api.js'
import { tempDirs, type TempDirs } from './temp-dirs.js'

export type TestClickHouse = Awaited<ReturnType<typeof openTestClickHouse>>

export interface BillingEnvOptions {
  /** Prefix of the file's temporary directories (`<prefix>XXXXXX` under the OS temp folder). */
  tempPrefix: string
  /** The billing jobs' clock (a closure over a file's `let now` moves with it). @default the jobs' own (the wall clock) */
  clock?: () => number
  /**
   * Retention to migrate the engine with right after it opens (the TTLs then drop old rows, as in
   * production). @default the migrations' own (openTestClickHouse)
   */
  retention?: RetentionConfig
  /** Changes to the demo tenant's seed, e.g. a public key. @default DEMO_DEFAULTS as is */
  seed?: Partial<DemoSeed>
  /**
   * More options for createBillingJobs (batch sizes, IVT models, a lease); `false` when the file
   * makes its own jobs and wants none here. @default none
   */
  billing?: Partial<Omit<BillingJobsOptions, 'client' | 'database' | 'tenants' | 'dir' | 'logger' | 'clock'>> | false
}

/** What the set-up opened; each field throws if read before `beforeAll` filled it. */
export interface BillingEnv {
  readonly ch: TestClickHouse
  readonly tenants: TenantStore
  /** Only when the options did not say `billing: false`. */
  readonly billing: BillingJobs
  /** The file's temporary directories (removed in `afterAll`). */
  readonly dirs: TempDirs
  /** A new temporary directory, removed with the others. */
  readonly tmp: () => string
  /** The silent logger the env's parts were given. */
  readonly logger: Logger
}

/** Reads a field filled by a hook, saying which when a test reads it too early. */
export function filled<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`test env: ${name} is read before beforeAll opened it`)
  return value
}

/**
 * Registers the `beforeAll` that opens the engine (with migrations, and `retention` if given), the seeded tenant store and the
 * billing jobs, and the `afterAll` that stops and closes them in reverse order and removes the
 * directories. Call it at a test file's top level, before the file's own hooks (which then see it open).
 */
export function useBillingEnv(options: BillingEnvOptions): BillingEnv {
  const dirs = tempDirs(options.tempPrefix)
  const logger = pino({ level: 'silent' })
  let ch: TestClickHouse | undefined
  let tenants: TenantStore | undefined
  let billing: BillingJobs | undefined

  beforeAll(async () => {
    ch = await openTestClickHouse()
    if (options.retention) await migrate(ch.client, 'adc', options.retention)
    tenants = openTenantStore({ dir: dirs.make() })
    await seedDemoTenant(tenants, { ...DEMO_DEFAULTS, ...options.seed })
    if (options.billing !== false) {
      billing = createBillingJobs({
        client: ch.client, database: 'adc', tenants, dir: dirs.make(), logger,
        ...(options.clock ? { clock: options.clock } : {}),
        ...options.billing,
      })
    }
  })

  afterAll(async () => {
    await billing?.stop()
    await tenants?.close()
    await ch?.close()
    dirs.removeAll()
  })

  return {
    get ch() { return filled(ch, 'ch') },
    get tenants() { return filled(tenants, 'tenants') },
    get billing() { return filled(billing, 'billing') },
    dirs,
    tmp: dirs.make,
    logger,
  }
}
