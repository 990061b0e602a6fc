/**
 * A core API on chDB + tenants (demo seed) with one day of sample data, for the API fuzzer
 * (scripts/schemathesis.sh) and manual poking. Loopback only; everything lives in a temp directory
 * removed on exit. Prints `listening <url>` once ready.
 *   node --import tsx scripts/serve-api-for-fuzz.ts [port]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import pino from 'pino'
import { createApiApp } from '../core/src/api/app.js'
import { FIXTURE_DAY, fixtureDay, insertRows } from '../core/src/testing/api.js'
import { createBillingJobs } from '../core/src/billing/jobs.js'
import { createClickHouse, migrate } from '../core/src/clickhouse/client.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant } from '../core/src/tenants/tenant-store.js'

const dir = mkdtempSync(join(tmpdir(), 'adc-fuzz-'))
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' })
const clickhouse = createClickHouse({ dataDir: join(dir, 'chdb') })
await migrate(clickhouse, 'adc')
const tenants = openTenantStore({ dir: join(dir, 'tenants') })
await seedDemoTenant(tenants, DEMO_DEFAULTS)
const billing = createBillingJobs({ client: clickhouse, database: 'adc', tenants, dir: join(dir, 'jobs'), logger })
billing.start()
await insertRows(clickhouse, 'adc.events_raw', fixtureDay())
await billing.submitBilling(FIXTURE_DAY, 'fuzz-setup')
await billing.idle()

const app = createApiApp({ clickhouse, database: 'adc', tenants, billing, logger, edgeSyncKey: process.env.EDGE_SYNC_KEY ?? 'edge_sync_dev' })
const server = serve({ fetch: app.fetch, port: Number(process.argv[2] ?? process.env.PORT ?? 0), hostname: '127.0.0.1' })
server.once('listening', () => {
  console.log(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}`)
})

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  server.close()
  await billing.stop()
  await tenants.close()
  await clickhouse.close()
  rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
