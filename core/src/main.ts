/**
 * Composition root: reads the configuration, picks the adapters (embedded log or Kafka, chDB or a
 * ClickHouse server), seeds the demo tenant in development, and starts the REST proxy gateway, the
 * processor, the API and the dashboard on one HTTP port. Nothing else chooses an adapter.
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { EVENTS_TOPIC } from '@adc/schemas'
import { loadConfig, type Config } from './config.js'
import { createClickHouse, migrate } from './clickhouse/client.js'
import { createEmbeddedLog } from './log/embedded-log.js'
import { createKafkaLog } from './log/kafka-log.js'
import type { Log } from './log/log.js'
import { createRestProxy } from './gateway/rest-proxy.js'
import { openTenantStore, seedDemoTenant } from './tenants/tenant-store.js'
import { createApiApp } from './api/app.js'
import { createProcessor } from './processor/processor.js'
import { createMetricsRegistry } from './metrics/registry.js'
import { createLogger, type Logger } from './logger.js'

export const STATS_TOPIC = 'edge-stats'

async function openLog(config: Config, dataDir: string, logger: Logger): Promise<Log> {
  if (config.KAFKA_BROKERS && config.KAFKA_BROKERS.length > 0) {
    return createKafkaLog({ brokers: config.KAFKA_BROKERS, clientId: 'adc-core', logger: logger.child({ component: 'log' }) })
  }
  return createEmbeddedLog({ dir: join(dataDir, 'log'), logger: logger.child({ component: 'log' }) })
}

function changelogOn(config: Config): boolean {
  if (config.STATE_CHANGELOG === 'auto') return (config.KAFKA_BROKERS?.length ?? 0) > 0
  return config.STATE_CHANGELOG === 'on'
}

export async function startCore(config: Config) {
  const logger = createLogger({ level: config.LOG_LEVEL })
  const dataDir = resolve(config.DATA_DIR)
  mkdirSync(dataDir, { recursive: true })

  const log = await openLog(config, dataDir, logger)
  await log.ensureTopic(EVENTS_TOPIC, config.LOG_PARTITIONS)
  await log.ensureTopic(STATS_TOPIC, Math.min(config.LOG_PARTITIONS, 4))

  const clickhouse = createClickHouse({ url: config.CLICKHOUSE_URL, dataDir: join(dataDir, 'chdb') })
  await migrate(clickhouse, config.CLICKHOUSE_DATABASE)

  const tenants = openTenantStore({ dir: join(dataDir, 'tenants') })
  if (config.ADC_ENV === 'development' || config.ADC_ENV === 'test') {
    await seedDemoTenant(tenants, {
      publisherKey: config.DEMO_PUBLISHER_KEY,
      advertiserKey: config.DEMO_ADVERTISER_KEY,
      signingSecret: config.DEMO_SIGNING_SECRET,
      adminKey: config.DEMO_ADMIN_KEY,
    })
  }

  const registry = createMetricsRegistry()
  const processor = config.PROCESSOR_ENABLED
    ? createProcessor({
      log, clickhouse, database: config.CLICKHOUSE_DATABASE, stateDir: join(dataDir, 'state'),
      ...(config.ICEBERG_S3_URL
        ? { icebergS3: { url: config.ICEBERG_S3_URL, accessKeyId: config.ICEBERG_S3_ACCESS_KEY_ID!, secretAccessKey: config.ICEBERG_S3_SECRET_ACCESS_KEY! } }
        : config.ICEBERG_ENABLED ? { icebergDir: join(dataDir, 'iceberg') } : {}),
      groupId: config.PROCESSOR_GROUP, logger, registry,
      ...(changelogOn(config) ? { changelog: {} } : {}),
    })
    : undefined

  const app = new Hono()
  app.get('/healthz', (c) => { const h = processor?.health() ?? { status: 'ok', stalled: [] }; return c.json(h, h.status === 'ok' ? 200 : 503) })
  app.get('/metrics', async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }))
  if (config.GATEWAY_ENABLED) app.route('/', createRestProxy({ log, topics: [EVENTS_TOPIC, STATS_TOPIC] }))
  app.route('/', createApiApp({
    clickhouse, database: config.CLICKHOUSE_DATABASE, tenants, registry, logger,
    edgeSyncKey: config.EDGE_SYNC_KEY, dataDir,
  }))

  await processor?.start()
  const server = serve({ fetch: app.fetch, port: config.CORE_PORT, hostname: config.CORE_HOST })
  logger.info({ port: config.CORE_PORT, log: config.KAFKA_BROKERS ? 'kafka' : 'embedded', clickhouse: config.CLICKHOUSE_URL ? 'server' : 'chdb' }, 'core started')

  let stopping: Promise<void> | undefined
  async function stop(): Promise<void> {
    stopping ??= (async () => {
      logger.info('core stopping: flushing and committing')
      await new Promise<void>((r) => server.close(() => r()))
      await processor?.stop()
      await log.close()
      await clickhouse.close()
      await tenants.close()
    })()
    return stopping
  }
  return { app, stop, logger }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('core/src/main.ts')) {
  const config = loadConfig()
  const core = await startCore(config)
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
