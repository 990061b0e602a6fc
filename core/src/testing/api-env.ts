/**
 * Test support for the HTTP API: the billing env (billing-env.ts) plus core's read API over it, made
 * in `beforeAll` right after the engine, tenants and jobs are open. One per test file, nothing shared.
 * Imported by tests only.
 * @example
 * const env = useApiEnv({ tempPrefix: 'adc-api-', clock: () => NOW, app: () => ({ registry: new Registry() }) })
 * it('answers', async () => { expect((await env.app.request('/openapi.json')).status).toBe(200) })
 */
import { beforeAll } from 'vitest'
import { createApiApp, type ApiDeps } from '../api/app.js'
import { filled, useBillingEnv, type BillingEnv, type BillingEnvOptions } from './billing-env.js'

export type TestApiApp = ReturnType<typeof createApiApp>

/** The app's dependencies a file adds or changes: registry, retention, export store, edge sync key... */
export type ExtraApiDeps = Partial<Omit<ApiDeps, 'clickhouse' | 'database' | 'tenants' | 'billing' | 'logger' | 'clock'>>

export interface ApiEnvOptions extends Omit<BillingEnvOptions, 'billing'> {
  /** More options for the billing jobs (see BillingEnvOptions). */
  billing?: Exclude<BillingEnvOptions['billing'], false>
  /**
   * The app's further dependencies, made once the env is open (so they may use `env.tmp()` or the
   * engine); the app gets the same `clock` as the jobs. @default none
   */
  app?: (env: BillingEnv) => ExtraApiDeps
}

export interface ApiEnv extends BillingEnv {
  readonly app: TestApiApp
}

/**
 * Registers the billing env's hooks and a `beforeAll` that builds the app on it
 * (`clickhouse`, `database: 'adc'`, `tenants`, `billing`, the silent logger, `clock`, then `options.app`).
 */
export function useApiEnv(options: ApiEnvOptions): ApiEnv {
  const env = useBillingEnv(options)
  let app: TestApiApp | undefined

  beforeAll(() => {
    app = createApiApp({
      clickhouse: env.ch.client, database: 'adc', tenants: env.tenants, billing: env.billing, logger: env.logger,
      ...(options.clock ? { clock: options.clock } : {}),
      ...options.app?.(env),
    })
  })

  return {
    get ch() { return env.ch },
    get tenants() { return env.tenants },
    get billing() { return env.billing },
    dirs: env.dirs,
    tmp: env.tmp,
    logger: env.logger,
    get app() { return filled(app, 'app') },
  }
}
