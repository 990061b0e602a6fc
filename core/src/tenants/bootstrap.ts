import type { Logger } from 'pino'
import { ConfigError, OPTIONAL_DEV_DEFAULTS, type Config } from '../config.js'
import { DEMO_DEFAULTS, generateKey, seedDemoTenant, type DemoSeed, type TenantStore } from './tenant-store.js'
import { SYSTEM_ACTORS } from './change-log.js'

/** The demo's public key and request signing secret: configured, or the development defaults. */
function demoKeyKinds(config: Pick<Config, 'ADC_ENV' | 'DEMO_PUBLIC_KEY' | 'DEMO_REQUEST_SIGNING_SECRET'>): { publicKey?: string; requestSigningSecret?: string } {
  const dev = config.ADC_ENV === 'development'
  const publicKey = config.DEMO_PUBLIC_KEY ?? (dev ? OPTIONAL_DEV_DEFAULTS.DEMO_PUBLIC_KEY : undefined)
  const requestSigningSecret = config.DEMO_REQUEST_SIGNING_SECRET ?? (dev ? OPTIONAL_DEV_DEFAULTS.DEMO_REQUEST_SIGNING_SECRET : undefined)
  return { ...(publicKey ? { publicKey } : {}), ...(requestSigningSecret ? { requestSigningSecret } : {}) }
}

/** Principal id of admin keys made by the bootstrap variable and `npm run admin -- create-key`. */
export const BOOTSTRAP_ADMIN_ID = 'admin'

/**
 * Names the development default keys this store still accepts, found by the store's own key lookup
 * (so by hash) and, for the signing secret, among the publishers' signing keys.
 */
export function developmentKeysIn(store: TenantStore, defaults: DemoSeed = DEMO_DEFAULTS): string[] {
  const found: string[] = []
  const keys: Array<[string, string]> = [
    ['DEMO_ADMIN_KEY', defaults.adminKey],
    ['DEMO_ADVERTISER_KEY', defaults.advertiserKey],
    ['DEMO_PUBLISHER_KEY', defaults.publisherKey],
    ...(defaults.publicKey !== undefined ? [['DEMO_PUBLIC_KEY', defaults.publicKey] as [string, string]] : []),
  ]
  for (const [name, key] of keys) if (store.principalForKey(key) !== undefined) found.push(name)
  const secrets = store.listPublishers().flatMap((p) => Object.values(p.signingKeys))
  if (secrets.includes(defaults.signingSecret)) found.push('DEMO_SIGNING_SECRET')
  if (defaults.requestSigningSecret !== undefined && secrets.includes(defaults.requestSigningSecret)) found.push('DEMO_REQUEST_SIGNING_SECRET')
  return found
}

/**
 * Applies `ADC_BOOTSTRAP_ADMIN_KEY` once: only to a store with no admin key. Afterwards the variable
 * is ignored with a warning, so a leaked or forgotten value never becomes a second way in.
 */
export async function applyBootstrapAdminKey(store: TenantStore, key: string | undefined, logger: Logger): Promise<'applied' | 'ignored' | 'absent'> {
  if (key === undefined) return 'absent'
  if (store.hasAdminKey()) {
    const same = store.principalForKey(key)?.kind === 'admin'
    logger.warn({ event: 'bootstrap_admin_key_ignored', alreadyApplied: same },
      'ADC_BOOTSTRAP_ADMIN_KEY ignored: the store already has an admin key; remove the variable')
    return 'ignored'
  }
  await store.as(SYSTEM_ACTORS.bootstrap).addKey({ kind: 'admin', id: BOOTSTRAP_ADMIN_ID }, key)
  logger.info({ adminId: BOOTSTRAP_ADMIN_ID }, 'bootstrap admin key applied; remove ADC_BOOTSTRAP_ADMIN_KEY now')
  return 'applied'
}

/**
 * Creates a new admin key and returns it (shown once; the store keeps its hash only). The change
 * names the operator's command line (`SYSTEM_ACTORS.adminCli`) as its actor.
 */
export async function createAdminKey(store: TenantStore, id: string = BOOTSTRAP_ADMIN_ID): Promise<string> {
  const key = generateKey('admin')
  await store.as(SYSTEM_ACTORS.adminCli).addKey({ kind: 'admin', id }, key)
  return key
}

/**
 * Brings the tenant store in line with the environment before anything serves:
 * - development and test: the demo tenant's keys become exactly the DEMO_* values;
 * - production: nothing is seeded, and a store that still accepts a development default key
 *   (one first used in development) refuses to start;
 * - any environment: the bootstrap admin key, once.
 * With `writes: false` (a replica outside the home region, whose tenants are the home region's
 * mirrored topic) nothing is written: no demo tenant, no bootstrap key; the production check stays.
 */
export async function prepareTenantStore(
  store: TenantStore,
  config: Pick<Config, 'ADC_ENV' | 'DEMO_PUBLISHER_KEY' | 'DEMO_ADVERTISER_KEY' | 'DEMO_SIGNING_SECRET' | 'DEMO_ADMIN_KEY' | 'ADC_BOOTSTRAP_ADMIN_KEY' | 'DEMO_PUBLIC_KEY' | 'DEMO_REQUEST_SIGNING_SECRET'>,
  logger: Logger,
  { writes = true }: { writes?: boolean } = {},
): Promise<void> {
  if (config.ADC_ENV === 'production') {
    const leaked = developmentKeysIn(store)
    if (leaked.length > 0) {
      throw new ConfigError(
        `refusing to run in production: the tenant store accepts the development defaults of ${leaked.join(', ')} ` +
        `(this DATA_DIR was used in development). Start production on a fresh DATA_DIR, or start it once with ` +
        `ADC_ENV=development and new secret values for every DEMO_* variable (that replaces the demo keys), then again in production.`,
      )
    }
  } else if (writes) {
    await seedDemoTenant(store, {
      publisherKey: config.DEMO_PUBLISHER_KEY,
      advertiserKey: config.DEMO_ADVERTISER_KEY,
      signingSecret: config.DEMO_SIGNING_SECRET,
      adminKey: config.DEMO_ADMIN_KEY,
      ...demoKeyKinds(config),
    })
  }
  if (!writes) return
  await applyBootstrapAdminKey(store, config.ADC_BOOTSTRAP_ADMIN_KEY, logger)
  if (!store.hasAdminKey()) {
    logger.warn({ event: 'no_admin_key' },
      'the tenant store has no admin key: set ADC_BOOTSTRAP_ADMIN_KEY for one start, or stop core and run `npm run admin -- create-key`')
  }
}
