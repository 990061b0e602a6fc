/**
 * Composition root: reads the configuration, prepares the tenant store (demo tenant in development,
 * refusal of development keys and the bootstrap admin key in production), picks the adapters
 * (embedded log or Kafka, chDB or a ClickHouse server), and starts two HTTP servers: the public one
 * (API, dashboard, OpenAPI, /healthz) and the internal one (REST proxy gateway behind HTTP Basic,
 * the edge's config pull, /metrics, /healthz). Nothing else chooses an adapter.
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { EVENTS_TOPIC, EDGE_STATS_TOPIC, fleetBillingJobsTopic, fleetTenantsTopic } from '@adc/schemas'
import { ConfigError, loadConfig, type Config } from './config.js'
import { createClickHouse, migrate } from './clickhouse/client.js'
import { createEmbeddedLog } from './log/embedded-log.js'
import { createKafkaLog } from './log/kafka-log.js'
import type { Log } from './log/log.js'
import { createInternalApp } from './gateway/internal-app.js'
import { bookedWith, type TenantStore } from './tenants/tenant-store.js'
import { openSharedTenantStore } from './tenants/shared-tenant-store.js'
import { prepareTenantStore } from './tenants/bootstrap.js'
import { createApiApp } from './api/app.js'
import { exportStoreFromConfig } from './billing/exports-store.js'
import { createDayExports } from './billing/exports.js'
import { createBillingJobs } from './billing/jobs.js'
import { createSnapshotStore } from './billing/snapshots.js'
import { openSharedJobStore } from './billing/job-store.js'
import { acquireLogLease, BILLING_LEASE, NEVER_HELD_LEASE } from './billing/lease.js'
import { createProcessor } from './processor/processor.js'
import { icebergDeps, lakeUpkeepSettings, openLake } from './lake/config.js'
import { createLakeUpkeep, LAKE_UPKEEP_LEASE } from './lake/upkeep.js'
import { icebergEraser } from './privacy/iceberg-eraser.js'
import { createPrivacyRetry, PRIVACY_RETRY_INTERVAL_MS } from './privacy/retry.js'
import { createMetricsRegistry } from './metrics/registry.js'
import { createCloseReports } from './metrics/close-reports.js'
import { registerBillingJobMetrics } from './metrics/billing-jobs.js'
import { createSpoolWatch } from './metrics/spool-watch.js'
import { createLogger, type Logger } from './logger.js'

type Server = ReturnType<typeof serve>

/** Starts a server and resolves once it listens, so a port in use fails the start instead of later. */
function listen(fetch: (req: Request) => Response | Promise<Response>, port: number, hostname: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port, hostname }, () => resolve(server))
    server.once('error', reject)
  })
}

function boundPort(server: Server): number {
  const a = server.address()
  return typeof a === 'object' && a ? a.port : 0
}

async function openLog(config: Config, dataDir: string, logger: Logger): Promise<Log> {
  if (config.KAFKA_BROKERS && config.KAFKA_BROKERS.length > 0) {
    return createKafkaLog({ brokers: config.KAFKA_BROKERS, clientId: 'adc-core', logger: logger.child({ component: 'log' }) })
  }
  return createEmbeddedLog({
    dir: join(dataDir, 'log'), logger: logger.child({ component: 'log' }),
    retention: { maxAgeMs: config.EMBEDDED_LOG_MAX_AGE_DAYS * 86_400_000, maxBytes: config.EMBEDDED_LOG_MAX_MB * 1024 * 1024 },
  })
}

function changelogOn(config: Config): boolean {
  if (config.STATE_CHANGELOG === 'auto') return (config.KAFKA_BROKERS?.length ?? 0) > 0
  return config.STATE_CHANGELOG === 'on'
}

/**
 * Whether this replica is in the home region (REGION = HOME_REGION, or neither set: one region),
 * the one that runs what has one writer fleet-wide (docs/regions.md).
 */
export function isHomeRegion(config: Pick<Config, 'REGION' | 'HOME_REGION'>): boolean {
  return config.REGION === undefined || config.REGION === config.HOME_REGION
}

export interface StartOptions {
  /** @default a logger on stdout at LOG_LEVEL */
  logger?: Logger
}

export async function startCore(config: Config, options: StartOptions = {}) {
  const logger = options.logger ?? createLogger({ level: config.LOG_LEVEL })
  const dataDir = resolve(config.DATA_DIR)
  mkdirSync(dataDir, { recursive: true })
  const home = isHomeRegion(config)
  if (!home) {
    // Said once at start: an operator reading why no close runs here finds the reason at the top.
    logger.info({
      event: 'non_home_region', region: config.REGION, homeRegion: config.HOME_REGION, billingJobs: false, tenantSeeding: false,
    }, `not the home region (${config.HOME_REGION}): no T+1 scheduler or billing jobs, no demo tenant or bootstrap admin key; tenants come from the mirrored topic`)
  }

  // Tenants live on the log (the shared tenant topic; this replica's LMDB view in DATA_DIR/tenants),
  // so every replica serves the same tenants. The store is prepared before anything else opens: a
  // production start on a development store stops here.
  const log = await openLog(config, dataDir, logger)
  let opened: TenantStore | undefined
  try {
    opened = await openSharedTenantStore({
      dir: join(dataDir, 'tenants'), log, topic: fleetTenantsTopic(config.FLEET_ID), logger: logger.child({ component: 'tenants' }),
    })
    // Outside the home region the tenant topic is home's mirror: a local write would diverge from it.
    await prepareTenantStore(opened, config, logger, { writes: home })
  } catch (err) {
    await opened?.close()
    await log.close()
    throw err
  }
  const tenants = opened

  await log.ensureTopic(EVENTS_TOPIC, config.LOG_PARTITIONS)
  await log.ensureTopic(EDGE_STATS_TOPIC, Math.min(config.LOG_PARTITIONS, 4))

  const clickhouse = createClickHouse({ url: config.CLICKHOUSE_URL, dataDir: join(dataDir, 'chdb') })
  await migrate(clickhouse, config.CLICKHOUSE_DATABASE, {
    rawDays: config.RETENTION_RAW_DAYS, minuteRollupDays: config.RETENTION_MINUTE_ROLLUP_DAYS, hourlyRollupDays: config.RETENTION_HOURLY_ROLLUP_DAYS,
    badRowsDays: config.RETENTION_BAD_ROWS_DAYS, ivtDecisionsDays: config.RETENTION_IVT_DAYS,
  })

  const registry = createMetricsRegistry()
  const processor = config.PROCESSOR_ENABLED
    ? createProcessor({
      log, clickhouse, database: config.CLICKHOUSE_DATABASE, stateDir: join(dataDir, 'state'),
      ...icebergDeps(config, dataDir),
      groupId: config.PROCESSOR_GROUP, logger, registry,
      // Campaigns are never deleted, so the verdict on an event's campaign is stable on replay.
      isBookedCampaign: (id, publisherId) => bookedWith(tenants.getCampaign(id), publisherId),
      // Before an event is called unbooked, this replica's tenant view catches up with the tenant
      // topic: a campaign booked through another replica a moment ago is not missed (tenant-sync.ts).
      tenants,
      ...(changelogOn(config) ? { changelog: {} } : {}),
    })
    : undefined

  const app = new Hono()
  const health = () => processor?.health() ?? { status: 'ok' as const, stalled: [] }
  app.get('/healthz', (c) => {
    const h = health()
    return c.json(h, h.status === 'ok' ? 200 : 503)
  })
  // One T+1 scheduler and one job executor across replicas: the holder of the billing lease on the
  // log (billing/lease.ts). Job records live on the fleet's job topic, this replica's view in DATA_DIR/billing-jobs.
  // Outside the home region a lease it never holds: billing snapshots have one writer, home (docs/regions.md).
  const billingLease = home
    ? await acquireLogLease({ log, name: `${config.FLEET_ID}.${BILLING_LEASE}`, logger: logger.child({ component: 'lease' }) })
    : NEVER_HELD_LEASE
  const jobStore = await openSharedJobStore({
    dir: join(dataDir, 'billing-jobs'), log, topic: fleetBillingJobsTopic(config.FLEET_ID), logger: logger.child({ component: 'billing-jobs' }),
  })
  // The holder writes each final version's export files right after the close (billing/exports.ts).
  const exportStore = exportStoreFromConfig(config, dataDir)
  const billing = createBillingJobs({
    client: clickhouse, database: config.CLICKHOUSE_DATABASE, tenants, store: jobStore,
    logger: logger.child({ component: 'billing' }), lease: billingLease, dailyCheckMs: config.BILLING_CHECK_MS,
    exports: createDayExports({ snapshots: createSnapshotStore({ client: clickhouse, database: config.CLICKHOUSE_DATABASE }), clickhouse, database: config.CLICKHOUSE_DATABASE, store: exportStore }),
  })
  if (home) billing.start()
  registerBillingJobMetrics(registry, billing)
  // After each close the lease holder runs the reconcile and accounting reports into metrics.
  const closeReports = createCloseReports({
    deps: { clickhouse, database: config.CLICKHOUSE_DATABASE, billing, tenants }, registry, lease: billingLease,
    logger: logger.child({ component: 'close-reports' }),
  })
  closeReports.start()
  const spoolWatch = config.EDGE_URL
    ? createSpoolWatch({ edgeUrl: config.EDGE_URL, syncKey: config.EDGE_SYNC_KEY, tenants, registry, lease: billingLease, logger: logger.child({ component: 'spool-watch' }) })
    : undefined
  spoolWatch?.start()
  // The lake's upkeep (compaction, expiry, clean-up) on one replica, the holder of the lake lease;
  // privacy erasures rewrite the lake's files through the same table, and the upkeep retries the
  // ones left pending (privacy/retry.ts).
  const lake = await openLake(config, dataDir, clickhouse)
  const lakeEraser = lake ? icebergEraser(lake.lake, { logger: logger.child({ component: 'privacy' }) }) : undefined
  const upkeepSettings = lake ? lakeUpkeepSettings(config) : undefined
  const lakeLease = upkeepSettings ? await acquireLogLease({ log, name: `${config.FLEET_ID}.${LAKE_UPKEEP_LEASE}`, logger: logger.child({ component: 'lease' }) }) : undefined
  const upkeep = lake && lakeEraser && upkeepSettings
    ? createLakeUpkeep({
      lake: lake.lake, ...upkeepSettings, lease: lakeLease, logger, registry,
      privacy: createPrivacyRetry({ client: clickhouse, database: config.CLICKHOUSE_DATABASE, erasers: [lakeEraser], logger }),
    })
    : undefined
  upkeep?.start()
  // Without the lake's upkeep, pending privacy erasures (ClickHouse's own tables) get a schedule of their own.
  const privacyRetry = upkeep
    ? undefined
    : createPrivacyRetry({ client: clickhouse, database: config.CLICKHOUSE_DATABASE, erasers: lakeEraser ? [lakeEraser] : [], logger })
  privacyRetry?.start({ intervalMs: PRIVACY_RETRY_INTERVAL_MS, lease: billingLease })
  app.route('/', createApiApp({
    clickhouse, database: config.CLICKHOUSE_DATABASE, tenants, registry, logger, dataDir, billing,
    exportStore, exportUrlTtlSeconds: config.EXPORTS_URL_TTL_SECONDS,
    keyLimit: { perSecond: config.API_RATE_LIMIT_PER_SECOND, burst: config.API_RATE_LIMIT_BURST },
    minuteRollupDays: config.RETENTION_MINUTE_ROLLUP_DAYS,
    retention: { rawDays: config.RETENTION_RAW_DAYS, hourlyRollupDays: config.RETENTION_HOURLY_ROLLUP_DAYS, badRowsDays: config.RETENTION_BAD_ROWS_DAYS, ivtDecisionsDays: config.RETENTION_IVT_DAYS },
    ...(config.REGION !== undefined && config.HOME_REGION !== undefined ? { region: config.REGION, homeRegion: config.HOME_REGION } : {}),
    ...(lakeEraser ? { rawErasers: [lakeEraser] } : {}),
  }))
  const internalApp = createInternalApp({
    ...(config.GATEWAY_ENABLED
      ? { gateway: { log, topics: [EVENTS_TOPIC, EDGE_STATS_TOPIC], credentials: { user: config.REST_PROXY_USER, password: config.REST_PROXY_PASSWORD } } }
      : {}),
    tenants, edgeSyncKey: config.EDGE_SYNC_KEY, registry, logger: logger.child({ component: 'internal' }), health,
  })

  await processor?.start()
  const server = await listen(app.fetch, config.CORE_PORT, config.CORE_HOST)
  const internalServer = await listen(internalApp.fetch, config.INTERNAL_PORT, config.INTERNAL_HOST)
  const port = boundPort(server)
  const internalPort = boundPort(internalServer)
  logger.info({
    port, internalPort, gateway: config.GATEWAY_ENABLED, log: config.KAFKA_BROKERS ? 'kafka' : 'embedded', clickhouse: config.CLICKHOUSE_URL ? 'server' : 'chdb',
  }, 'core started')

  let stopping: Promise<void> | undefined
  async function stop(): Promise<void> {
    stopping ??= (async () => {
      logger.info('core stopping: flushing and committing')
      await Promise.all([server, internalServer].map((srv) => new Promise<void>((r) => srv.close(() => r()))))
      await processor?.stop()
      spoolWatch?.stop()
      await upkeep?.stop()
      await privacyRetry?.stop()
      await lakeLease?.release()
      lake?.close()
      await closeReports.stop()
      await billing.stop()
      await jobStore.close()
      await billingLease.release()
      await tenants.close()
      await log.close()
      await clickhouse.close()
    })()
    return stopping
  }
  return { app, internalApp, port, internalPort, stop, logger }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('core/src/main.ts')) {
  let core: Awaited<ReturnType<typeof startCore>>
  try {
    core = await startCore(loadConfig())
  } catch (err) {
    // A refused configuration or store is the operator's to fix: say what, without a stack trace.
    if (err instanceof ConfigError) {
      createLogger({ level: 'info' }).fatal({ err: { name: err.name, message: err.message } }, err.message)
      process.exit(1)
    }
    throw err
  }
  const shutdown = (signal: string) => {
    core.logger.info({ signal }, 'shutdown requested')
    core.stop().then(() => process.exit(0), (err) => {
      core.logger.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}
