/**
 * The Worker's settings, parsed once from its variables: a missing or unsafe one answers 503 edge_misconfigured.
 */
import { z } from 'zod'
import type { Env } from './env.js'

const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).catch(def).default(def)

const settingsSchema = z.object({
  restProxyUrl: z.string().url(),
  /** HTTP Basic user and password for every REST proxy call (`wrangler secret put REST_PROXY_USER`). */
  restProxyUser: z.string().min(1).regex(/^[^:]+$/, 'must not contain ":"'),
  restProxyPassword: z.string().min(1),
  coreUrl: z.string().url(),
  edgeSyncKey: z.string().min(1),
  /** @default 30_000 how long a pulled tenant config is used before asking core again */
  configTtlMs: int(30_000, 0, 3_600_000),
  /** @default 8 number of DedupeShard objects */
  dedupeShards: int(8, 1, 1024),
  /** @default 250 a shard slower than this is skipped (events marked dedupe: skipped) */
  dedupeTimeoutMs: int(250, 1, 30_000),
  /** @default 1000 first Spool retry delay; doubles per failed attempt up to 5 minutes */
  spoolFirstRetryMs: int(1000, 1, 3_600_000),
  /** @default 1500 per REST proxy call */
  proxyTimeoutMs: int(1500, 1, 60_000),
  /** @default 3 REST proxy attempts for retriable failures before spooling */
  forwardAttempts: int(3, 1, 10),
  /** @default 200_000 keys per Bloom generation */
  bloomCapacity: int(200_000, 100, 50_000_000),
  /** @default 0.01 target false-positive rate per Bloom generation at capacity */
  bloomFpRate: z.coerce.number().gt(0).lt(0.5).catch(0.01).default(0.01),
  ipHashSecret: z.string().min(1),
  /** @default 200 a RateLimiter slower than this is skipped: the isolate's own bucket decides (fail-open) */
  rateLimitTimeoutMs: int(200, 1, 30_000),
  /** @default 500 an isolate sums its edge-stats this long and sends them as one REST proxy call (0: at once) */
  statsFlushMs: int(500, 0, 10_000),
  /** @default 50 an isolate gathers its durable events' dedupe keys this long and confirms them as one call per shard (0: at once) */
  confirmFlushMs: int(50, 0, 10_000),
})

export type Settings = z.infer<typeof settingsSchema>

/** The development defaults of wrangler.toml; outside development the edge refuses to run with them. */
export const DEVELOPMENT_SECRETS = {
  EDGE_SYNC_KEY: 'edge_sync_dev',
  IP_HASH_SECRET: 'ip-hash-secret-dev',
  REST_PROXY_USER: 'adc_edge_dev',
  REST_PROXY_PASSWORD: 'rest-proxy-secret-dev',
} as const

/** The Worker's variables are missing or unsafe: every request answers 503 edge_misconfigured. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SettingsError'
  }
}

const cache = new WeakMap<object, Settings>()

/** Parses the Worker's variables once per env object; a missing required variable fails loudly. */
export function settingsFrom(env: Env): Settings {
  const hit = cache.get(env)
  if (hit) return hit
  if ((env.ADC_ENV ?? 'development') !== 'development') {
    const unsafe = (Object.keys(DEVELOPMENT_SECRETS) as (keyof typeof DEVELOPMENT_SECRETS)[]).filter((k) => env[k] === DEVELOPMENT_SECRETS[k])
    if (unsafe.length > 0) throw new SettingsError(`${unsafe.join(', ')} still hold development defaults while ADC_ENV=${env.ADC_ENV}`)
  }
  const result = settingsSchema.safeParse({
    restProxyUrl: env.REST_PROXY_URL,
    restProxyUser: env.REST_PROXY_USER,
    restProxyPassword: env.REST_PROXY_PASSWORD,
    coreUrl: env.CORE_URL,
    edgeSyncKey: env.EDGE_SYNC_KEY,
    configTtlMs: env.EDGE_CONFIG_TTL_MS,
    dedupeShards: env.DEDUPE_SHARDS,
    dedupeTimeoutMs: env.DEDUPE_TIMEOUT_MS,
    spoolFirstRetryMs: env.SPOOL_FIRST_RETRY_MS,
    proxyTimeoutMs: env.PROXY_TIMEOUT_MS,
    forwardAttempts: env.FORWARD_ATTEMPTS,
    bloomCapacity: env.BLOOM_CAPACITY,
    bloomFpRate: env.BLOOM_FP_RATE,
    ipHashSecret: env.IP_HASH_SECRET,
    rateLimitTimeoutMs: env.RATE_LIMIT_TIMEOUT_MS,
    statsFlushMs: env.STATS_FLUSH_MS,
    confirmFlushMs: env.DEDUPE_CONFIRM_FLUSH_MS,
  })
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new SettingsError(`invalid edge variable ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`)
  }
  cache.set(env, result.data)
  return result.data
}
