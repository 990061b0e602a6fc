import { z } from 'zod'
import { DEFAULT_PROCESSOR_GROUP } from '@adc/schemas'

/**
 * Development defaults for the demo tenant. They are printed at start and refused outside
 * development mode, so a deployment cannot run with publicly known keys.
 */
export const DEV_DEFAULTS = {
  DEMO_PUBLISHER_KEY: 'pk_demo_publisher_dev',
  DEMO_ADVERTISER_KEY: 'ak_demo_advertiser_dev',
  DEMO_SIGNING_SECRET: 'demo-signing-secret-dev',
  DEMO_ADMIN_KEY: 'admin_demo_dev',
  EDGE_SYNC_KEY: 'edge_sync_dev',
  REST_PROXY_USER: 'adc_edge_dev',
  REST_PROXY_PASSWORD: 'rest-proxy-secret-dev',
} as const

/** Demo keys that development fills in when unset; elsewhere they are generated unless given. */
export const OPTIONAL_DEV_DEFAULTS = {
  DEMO_PUBLIC_KEY: 'pkpub_demo_publisher_dev',
  DEMO_REQUEST_SIGNING_SECRET: 'demo-request-secret-dev',
} as const

const csv = z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))

/** Every environment variable core reads, parsed once. The README's table lists the same names. */
export const configSchema = z.object({
  /**
   * `development` seeds the demo tenant from DEMO_* on every start and allows the development
   * defaults; `test` seeds it too but refuses the defaults; `production` seeds nothing, refuses the
   * defaults, and refuses a store holding any development key. @default development
   */
  ADC_ENV: z.enum(['development', 'test', 'production']).default('development'),
  /** Port of the public HTTP server (API, dashboard, OpenAPI, /healthz). @default 8788 */
  CORE_PORT: z.coerce.number().int().min(0).max(65535).default(8788),
  /** Interface to bind the public server to. @default 127.0.0.1 */
  CORE_HOST: z.string().default('127.0.0.1'),
  /**
   * Port of the internal HTTP server: the REST proxy gateway (HTTP Basic), the edge's config pull
   * (EDGE_SYNC_KEY), /metrics and /healthz. Only the edge and monitoring reach it. @default 8789
   */
  INTERNAL_PORT: z.coerce.number().int().min(0).max(65535).default(8789),
  /** Interface to bind the internal server to. @default 127.0.0.1 */
  INTERNAL_HOST: z.string().default('127.0.0.1'),
  /** Directory for the embedded log, LMDB state, chDB data and the Iceberg table. @default .data */
  DATA_DIR: z.string().default('.data'),
  /** Comma-separated Kafka bootstrap brokers; unset means the embedded log. */
  KAFKA_BROKERS: csv.optional(),
  /** ClickHouse server URL (http://host:8123); unset means embedded chDB in DATA_DIR. */
  CLICKHOUSE_URL: z.string().url().optional(),
  /** ClickHouse database name. @default adc */
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('adc'),
  /** Partitions of the events topic when core creates it. @default 8 */
  LOG_PARTITIONS: z.coerce.number().int().min(1).max(1024).default(8),
  /** Consumer group of the processors. @default adc-processor */
  PROCESSOR_GROUP: z.string().default(DEFAULT_PROCESSOR_GROUP),
  /** Run the processor in this process. @default true */
  PROCESSOR_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** Run the REST proxy gateway in this process. @default true */
  GATEWAY_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /**
   * Write raw events to the Iceberg table `<ICEBERG_NAMESPACE>.<ICEBERG_TABLE>`: by default in the
   * embedded SQLite catalog `<DATA_DIR>/iceberg/catalog.db` with its warehouse beside it (created on
   * first start); with ICEBERG_CATALOG_URL in that REST catalog. @default true
   */
  ICEBERG_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** Iceberg REST catalog base URL (`http://iceberg-rest:8181`, without /v1); set, it replaces the embedded catalog. */
  ICEBERG_CATALOG_URL: z.string().url().optional(),
  /** Bearer token for the REST catalog, when it requires one. */
  ICEBERG_CATALOG_TOKEN: z.string().optional(),
  /** Root location of new tables (`s3://warehouse`); unset: the REST catalog's default, or `<DATA_DIR>/iceberg/warehouse`. */
  ICEBERG_WAREHOUSE: z.string().optional(),
  /** Iceberg namespace and table of the raw events. @default adc, events_raw */
  ICEBERG_NAMESPACE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('adc'),
  ICEBERG_TABLE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('events_raw'),
  /** S3 API endpoint for `s3://` locations (`http://minio:9000`), path-style, with its credentials. */
  ICEBERG_S3_ENDPOINT: z.string().url().optional(),
  ICEBERG_S3_ACCESS_KEY_ID: z.string().optional(),
  ICEBERG_S3_SECRET_ACCESS_KEY: z.string().optional(),
  /** @default us-east-1 */
  ICEBERG_S3_REGION: z.string().default('us-east-1'),
  /**
   * S3 bucket of the reconcile export files (CSV and Parquet per advertiser and publisher, one set per
   * final snapshot version). Unset: a local directory, `<DATA_DIR>/exports`, served through core.
   */
  EXPORTS_S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name').optional(),
  /** Key prefix of the export files in the bucket: empty, or ending with `/`. @default exports/ */
  EXPORTS_S3_PREFIX: z.string().regex(/^([A-Za-z0-9_.:=-]+\/)*$/, 'must be empty or end with "/" (A-Z a-z 0-9 _ . : = - segments)')
    .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'must not have a "." or ".." segment')
    .default('exports/'),
  /** S3 API endpoint of the export bucket, path-style, with its credentials and region. @default the ICEBERG_S3_* values */
  EXPORTS_S3_ENDPOINT: z.string().url().optional(),
  EXPORTS_S3_ACCESS_KEY_ID: z.string().optional(),
  EXPORTS_S3_SECRET_ACCESS_KEY: z.string().optional(),
  EXPORTS_S3_REGION: z.string().optional(),
  /**
   * The endpoint as the API's clients reach it, written into presigned URLs (the signature covers
   * the host). @default EXPORTS_S3_ENDPOINT
   */
  EXPORTS_S3_PUBLIC_ENDPOINT: z.string().url().optional(),
  /** How long a presigned export URL stays valid, in seconds (SigV4 allows up to 7 days). @default 900 */
  EXPORTS_URL_TTL_SECONDS: z.coerce.number().int().min(1).max(604_800).default(900),
  /** Requests per second and burst of each advertiser or publisher key on the public API, per replica (api/key-limit.ts). */
  API_RATE_LIMIT_PER_SECOND: z.coerce.number().positive().default(20),
  API_RATE_LIMIT_BURST: z.coerce.number().int().min(1).default(60),
  /**
   * Scheduled lake upkeep (compaction of small data files, snapshot expiry, clean-up of unreachable
   * files), run by one replica: the holder of the lease `<FLEET_ID>.lake-upkeep`. @default true
   */
  ICEBERG_UPKEEP_ENABLED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** Time between upkeep runs. @default 3600000 (1 h) */
  ICEBERG_UPKEEP_INTERVAL_MS: z.coerce.number().int().min(1000).default(3_600_000),
  /** An hour partition is compacted once it has this many small data files. @default 10 */
  ICEBERG_COMPACT_MIN_FILES: z.coerce.number().int().min(2).default(10),
  /** Data files below this size (MiB) count as small. @default 32 */
  ICEBERG_COMPACT_SMALL_FILE_MB: z.coerce.number().min(0.001).default(32),
  /** Size (MiB) compaction aims at per new data file. @default 128 */
  ICEBERG_COMPACT_TARGET_FILE_MB: z.coerce.number().min(0.001).default(128),
  /** Clean-up deletes unreachable files only when older than this, and keeps files of snapshots current within it (readers mid-scan). @default 3600000 (1 h) */
  ICEBERG_CLEANUP_MIN_AGE_MS: z.coerce.number().int().min(0).default(3_600_000),
  /**
   * State changelog for several processors sharing partitions (dedupe and join state moves with a
   * partition on rebalance). `auto` turns it on with Kafka and off on the embedded log, where one
   * process owns every partition and its local LMDB state. @default auto
   */
  STATE_CHANGELOG: z.enum(['auto', 'on', 'off']).default('auto'),
  /**
   * Name of this deployment on its log: core replicas with the same FLEET_ID on one log share
   * tenants (topic `<FLEET_ID>-tenants`) and one T+1 billing scheduler (lease `<FLEET_ID>.billing-scheduler`).
   * @default adc
   */
  FLEET_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default('adc'),
  /**
   * This replica's region and the home region, which alone takes tenant and billing writes
   * (docs/regions.md). Set both or neither; when they differ, the API answers those writes 421
   * `not_home_region`. Unset: one region, every write taken.
   */
  REGION: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a lower-case region name (a-z 0-9 -)').optional(),
  HOME_REGION: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a lower-case region name (a-z 0-9 -)').optional(),
  /** ClickHouse retention in days after the event time (0 keeps forever; billing snapshots are always kept). @default 90 */
  RETENTION_RAW_DAYS: z.coerce.number().int().min(0).default(90),
  /** Minute rollups (rollup_minute, rollup_ivt_minute, edge_stats_minute); older reads are served per hour. @default 35 */
  RETENTION_MINUTE_ROLLUP_DAYS: z.coerce.number().int().min(0).default(35),
  /** The hourly rollups (rollup_hour, rollup_ivt_hour, edge_stats_hour). @default 731 */
  RETENTION_HOURLY_ROLLUP_DAYS: z.coerce.number().int().min(0).default(731),
  /** bad_rows. @default 90 */
  RETENTION_BAD_ROWS_DAYS: z.coerce.number().int().min(0).default(90),
  /** ivt_decisions. @default 90 */
  RETENTION_IVT_DAYS: z.coerce.number().int().min(0).default(90),
  /** The embedded log: processed records older than this are deleted. @default 7 */
  EMBEDDED_LOG_MAX_AGE_DAYS: z.coerce.number().min(0).default(7),
  /** The embedded log: past this many MiB, the oldest processed records are deleted whatever their age. @default 10240 */
  EMBEDDED_LOG_MAX_MB: z.coerce.number().int().min(1).default(10_240),
  /**
   * The edge's base URL, for its operator routes (Bearer EDGE_SYNC_KEY): the lease holder exports each
   * publisher's Spool depth and dead rows as metrics. Unset: not polled.
   */
  EDGE_URL: z.string().url().optional(),
  /** How often each replica checks whether yesterday needs its T+1 billing close (the lease holder acts). @default 300000 (5 min) */
  BILLING_CHECK_MS: z.coerce.number().int().min(100).default(300_000),
  /** pino level. @default info */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DEMO_PUBLISHER_KEY: z.string().min(8).default(DEV_DEFAULTS.DEMO_PUBLISHER_KEY),
  DEMO_ADVERTISER_KEY: z.string().min(8).default(DEV_DEFAULTS.DEMO_ADVERTISER_KEY),
  DEMO_SIGNING_SECRET: z.string().min(8).default(DEV_DEFAULTS.DEMO_SIGNING_SECRET),
  DEMO_ADMIN_KEY: z.string().min(8).default(DEV_DEFAULTS.DEMO_ADMIN_KEY),
  /** Demo publisher's public-scope key (tag, beacon). @default pkpub_demo_publisher_dev in development */
  DEMO_PUBLIC_KEY: z.string().min(8).optional(),
  /** Demo request signing secret, key id `demo_request`. @default demo-request-secret-dev in development */
  DEMO_REQUEST_SIGNING_SECRET: z.string().min(8).optional(),
  /** Shared secret the edge uses to pull tenant configuration. */
  EDGE_SYNC_KEY: z.string().min(8).default(DEV_DEFAULTS.EDGE_SYNC_KEY),
  /** HTTP Basic user the REST proxy gateway requires (Confluent's `authentication.method=BASIC`). */
  REST_PROXY_USER: z.string().min(1).regex(/^[^:]+$/, 'must not contain ":"').default(DEV_DEFAULTS.REST_PROXY_USER),
  /** HTTP Basic password the REST proxy gateway requires. */
  REST_PROXY_PASSWORD: z.string().min(12).default(DEV_DEFAULTS.REST_PROXY_PASSWORD),
  /**
   * First admin key of a store that has none (production's only way in besides `npm run admin --
   * create-key`). Read at start; ignored, with a warning, once the store holds an admin key.
   */
  ADC_BOOTSTRAP_ADMIN_KEY: z.string().min(24).optional(),
})

export type Config = z.infer<typeof configSchema>

export class ConfigError extends Error {
  readonly retriable = false
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** Parses the environment; refuses development defaults outside development mode. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = configSchema.safeParse(env)
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
    throw new ConfigError(`invalid configuration: ${detail}`)
  }
  const config = parsed.data
  if (config.ADC_ENV !== 'development') {
    // Production seeds no demo tenant, so it does not read the DEMO_* keys at all; a process
    // without the gateway does not read the REST proxy credentials.
    const defaults: Record<string, string> = { ...DEV_DEFAULTS, ...OPTIONAL_DEV_DEFAULTS }
    const leaked = (Object.keys(defaults) as (keyof Config)[])
      .filter((k) => config.ADC_ENV !== 'production' || !k.startsWith('DEMO_'))
      .filter((k) => config.GATEWAY_ENABLED || !k.startsWith('REST_PROXY_'))
      .filter((k) => config[k] === defaults[k])
    if (leaked.length > 0) {
      throw new ConfigError(`refusing to run in ${config.ADC_ENV} with development defaults for: ${leaked.join(', ')}`)
    }
  }
  if (config.INTERNAL_PORT !== 0 && config.INTERNAL_PORT === config.CORE_PORT) {
    throw new ConfigError(`INTERNAL_PORT and CORE_PORT are both ${config.CORE_PORT}: the internal server (REST proxy, /metrics) needs its own port`)
  }
  if ((config.REGION === undefined) !== (config.HOME_REGION === undefined)) {
    throw new ConfigError('set REGION and HOME_REGION together (or neither): a replica that does not know both cannot tell whether it may take tenant writes')
  }
  if (config.ICEBERG_S3_ENDPOINT && (!config.ICEBERG_S3_ACCESS_KEY_ID || !config.ICEBERG_S3_SECRET_ACCESS_KEY)) {
    throw new ConfigError('ICEBERG_S3_ENDPOINT needs ICEBERG_S3_ACCESS_KEY_ID and ICEBERG_S3_SECRET_ACCESS_KEY')
  }
  if (config.ICEBERG_WAREHOUSE?.startsWith('s3://') && !config.ICEBERG_S3_ENDPOINT) {
    throw new ConfigError('an s3:// ICEBERG_WAREHOUSE needs ICEBERG_S3_ENDPOINT and its credentials')
  }
  if (config.EXPORTS_S3_BUCKET) {
    const endpoint = config.EXPORTS_S3_ENDPOINT ?? config.ICEBERG_S3_ENDPOINT
    const keyId = config.EXPORTS_S3_ACCESS_KEY_ID ?? config.ICEBERG_S3_ACCESS_KEY_ID
    const secret = config.EXPORTS_S3_SECRET_ACCESS_KEY ?? config.ICEBERG_S3_SECRET_ACCESS_KEY
    if (!endpoint || !keyId || !secret) {
      throw new ConfigError('EXPORTS_S3_BUCKET needs an endpoint and credentials: EXPORTS_S3_ENDPOINT, EXPORTS_S3_ACCESS_KEY_ID and EXPORTS_S3_SECRET_ACCESS_KEY (or the ICEBERG_S3_* ones)')
    }
  }
  return config
}
