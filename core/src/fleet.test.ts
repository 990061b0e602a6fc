import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EVENTS_TOPIC } from '@adc/schemas'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiApp } from './api/app.js'
import { openTestClickHouse } from './testing/api.js'
import { createBillingJobs, type BillingJobs } from './billing/jobs.js'
import { acquireLogLease, BILLING_LEASE, type Lease } from './billing/lease.js'
import { createEmbeddedLog, type EmbeddedLogHandle } from './log/embedded-log.js'
import { createMetricsRegistry } from './metrics/registry.js'
import { createProcessor, type Processor } from './processor/processor.js'
import { testEnvelope, toRecord } from './testing/events.js'
import { openSharedTenantStore } from './tenants/shared-tenant-store.js'
import { DEMO_DEFAULTS, seedDemoTenant, type TenantStore } from './tenants/tenant-store.js'

/**
 * Two core replicas in one process over one embedded log and one ClickHouse: the embedded
 * equivalent of test/e2e/fleet.kafka.test.ts (two core processes on one Kafka broker), wired the
 * way core's main wires one replica.
 */
const logger = pino({ level: 'silent' })
const ADMIN = { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}`, 'content-type': 'application/json' }
const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'adc-fleet-'))
  dirs.push(d)
  return d
}

interface Replica {
  tenants: TenantStore
  lease: Lease
  billing: BillingJobs
  processor: Processor
  registry: ReturnType<typeof createMetricsRegistry>
  app: ReturnType<typeof createApiApp>
}

let ch: Awaited<ReturnType<typeof openTestClickHouse>>
let log: EmbeddedLogHandle
const replicas: Replica[] = []
const now = Date.parse('2026-09-02T02:00:00Z')

async function startReplica(): Promise<Replica> {
  const dir = tmp()
  const tenants = await openSharedTenantStore({ dir: join(dir, 'tenants'), log, logger })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  const lease = await acquireLogLease({ log, name: BILLING_LEASE, logger })
  const billing = createBillingJobs({ client: ch.client, database: 'adc', tenants, dir: join(dir, 'billing-jobs'), logger, clock: () => now, lease, closeLookbackDays: 1 })
  const registry = createMetricsRegistry({ defaultMetrics: false })
  const processor = createProcessor({
    log, clickhouse: ch.client, database: 'adc', stateDir: join(dir, 'state'), groupId: 'fleet-processor', logger, registry,
    isBookedCampaign: (id) => tenants.getCampaign(id) !== undefined, topicPartitions: 4,
  })
  await processor.start()
  const app = createApiApp({ clickhouse: ch.client, database: 'adc', tenants, registry, logger, billing, clock: () => now })
  const r = { tenants, lease, billing, processor, registry, app }
  replicas.push(r)
  return r
}

async function assigned(r: Replica): Promise<number[]> {
  const metric = await r.registry.getSingleMetric('adc_processor_partition_assigned')!.get()
  return metric.values.filter((v) => v.labels.topic === EVENTS_TOPIC && v.value === 1).map((v) => Number(v.labels.partition)).sort()
}

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms
  let v = await read()
  while (!done(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    v = await read()
  }
  return v
}

beforeAll(async () => {
  ch = await openTestClickHouse()
  log = await createEmbeddedLog({ dir: tmp(), logger, idleWaitMs: 50 })
})

afterAll(async () => {
  for (const r of replicas) {
    await r.processor.stop()
    await r.billing.stop()
    await r.lease.release()
    await r.tenants.close()
  }
  await log.close()
  await ch.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('two core replicas on one embedded log', () => {
  it('show an admin write on A through B, run one billing close per day, and share the event partitions', async () => {
    const a = await startReplica()
    // A alone owns every partition and reports lag for each, before B joins.
    await log.append(EVENTS_TOPIC, Array.from({ length: 40 }, (_, n) => toRecord(testEnvelope({ type: 'impression', n, impressionId: `imp_f${n}`, ts: now }))))
    expect(await until(async () => a.processor.status().events.billable, (n) => n >= 40)).toBe(40)
    const b = await startReplica()

    const created = await a.app.request('/v1/admin/advertisers', { method: 'POST', headers: ADMIN, body: JSON.stringify({ id: 'adv_fleet', name: 'Fleet' }) })
    expect(created.status).toBe(201)
    const { apiKey } = (await created.json()) as { apiKey: string }
    const me = await until(async () => (await b.app.request('/v1/me', { headers: { authorization: `Bearer ${apiKey}` } })).status, (s) => s === 200, 5_000)
    expect(me).toBe(200)
    // The same id created through B loses to A's record: 409 there too.
    const again = await b.app.request('/v1/admin/advertisers', { method: 'POST', headers: ADMIN, body: JSON.stringify({ id: 'adv_fleet', name: 'Again' }) })
    expect(again.status).toBe(409)

    await Promise.race([a.lease.whenHeld(), b.lease.whenHeld()])
    const ticks = await Promise.all([a.billing.dailyTick(), b.billing.dailyTick()])
    expect(ticks.filter(Boolean)).toHaveLength(1)
    await Promise.all([a.billing.idle(), b.billing.idle()])
    const jobsOn = async (r: Replica) =>
      ((await (await r.app.request('/v1/billing/jobs', { headers: ADMIN })).json()) as { jobs: Array<{ reason: string; days: string[] }> }).jobs
    const scheduled = [...(await jobsOn(a)), ...(await jobsOn(b))].filter((j) => j.reason.startsWith('scheduled close (T+1)'))
    expect(scheduled.map((j) => j.days)).toEqual([['2026-09-01']])

    const [pa, pb] = [await until(() => assigned(a), (p) => p.length === 2), await until(() => assigned(b), (p) => p.length === 2)]
    expect(pa.length).toBe(2)
    expect(pb.length).toBe(2)
    expect([...pa, ...pb].sort()).toEqual([0, 1, 2, 3])
    // A replica reports lag only for partitions it owns (a revoked partition's last value would
    // otherwise stay and be summed by the lag alert next to its new owner's).
    for (const [r, owned] of [[a, pa], [b, pb]] as const) {
      const lag = await r.registry.getSingleMetric('adc_processor_lag_records')!.get()
      const parts = lag.values.filter((v) => v.labels.topic === EVENTS_TOPIC).map((v) => Number(v.labels.partition))
      for (const p of parts) expect(owned).toContain(p)
    }
  })
})
