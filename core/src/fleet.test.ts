import { join } from 'node:path'
import { EVENTS_TOPIC } from '@adc/schemas'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiApp } from './api/app.js'
import { openTestClickHouse } from './testing/api.js'
import { createDayExports, type DayExport } from './billing/exports.js'
import { createBillingJobs, type BillingJobs, type Job } from './billing/jobs.js'
import { createSnapshotStore } from './billing/snapshots.js'
import { createLocalObjectStore } from './objects/local-store.js'
import { openSharedJobStore, type JobStore } from './billing/job-store.js'
import { acquireLogLease, BILLING_LEASE, type Lease } from './billing/lease.js'
import { createEmbeddedLog, type EmbeddedLogHandle } from './log/embedded-log.js'
import { createMetricsRegistry } from './metrics/registry.js'
import { createProcessor, type Processor } from './processor/processor.js'
import { testEnvelope, toRecord } from './testing/events.js'
import { openSharedTenantStore } from './tenants/shared-tenant-store.js'
import { DEMO_DEFAULTS, seedDemoTenant, type TenantStore } from './tenants/tenant-store.js'
import { tempDirs } from './testing/temp-dirs.js'

/**
 * Two core replicas in one process over one embedded log and one ClickHouse: the embedded
 * equivalent of test/e2e/fleet.kafka.test.ts (two core processes on one Kafka broker), wired the
 * way core's main wires one replica.
 */
const logger = pino({ level: 'silent' })
const ADMIN = { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}`, 'content-type': 'application/json' }
const dirs = tempDirs('adc-fleet-')
const tmp = dirs.make

interface Replica {
  tenants: TenantStore
  lease: Lease
  jobStore: JobStore
  billing: BillingJobs
  processor: Processor
  registry: ReturnType<typeof createMetricsRegistry>
  app: ReturnType<typeof createApiApp>
}

let ch: Awaited<ReturnType<typeof openTestClickHouse>>
let log: EmbeddedLogHandle
/** The fleet's export store (S3 in compose), shared by the replicas. */
let exportsDir: string
const replicas: Replica[] = []
const now = Date.parse('2026-09-02T02:00:00Z')

async function startReplica(): Promise<Replica> {
  const dir = tmp()
  const tenants = await openSharedTenantStore({ dir: join(dir, 'tenants'), log, logger })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  const lease = await acquireLogLease({ log, name: BILLING_LEASE, logger })
  const jobStore = await openSharedJobStore({ dir: join(dir, 'billing-jobs'), log, logger })
  const exportStore = createLocalObjectStore({ root: exportsDir })
  const exports = createDayExports({ snapshots: createSnapshotStore({ client: ch.client, database: 'adc' }), clickhouse: ch.client, database: 'adc', store: exportStore })
  const billing = createBillingJobs({ client: ch.client, database: 'adc', tenants, store: jobStore, logger, clock: () => now, lease, closeLookbackDays: 1, jobPollMs: 200, exports })
  billing.start()
  const registry = createMetricsRegistry({ defaultMetrics: false })
  const processor = createProcessor({
    log, clickhouse: ch.client, database: 'adc', stateDir: join(dir, 'state'), groupId: 'fleet-processor', logger, registry,
    isBookedCampaign: (id) => tenants.getCampaign(id) !== undefined, tenants, topicPartitions: 4,
  })
  await processor.start()
  const app = createApiApp({ clickhouse: ch.client, database: 'adc', tenants, registry, logger, billing, clock: () => now, exportStore })
  const r = { tenants, lease, jobStore, billing, processor, registry, app }
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
  exportsDir = tmp()
})

afterAll(async () => {
  for (const r of replicas) {
    await r.processor.stop()
    await r.billing.stop()
    await r.jobStore.close()
    await r.lease.release()
    await r.tenants.close()
  }
  await log.close()
  await ch.close()
  dirs.removeAll()
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
      ((await (await r.app.request('/v1/billing/jobs', { headers: ADMIN })).json()) as { jobs: Array<{ id: string; reason: string; days: string[]; status: string }> }).jobs
    // Both replicas list the fleet's jobs: one scheduled close, the same on A and B.
    const scheduledOn = async (r: Replica) => (await jobsOn(r)).filter((j) => j.reason.startsWith('scheduled close (T+1)'))
    const onA = await until(() => scheduledOn(a), (j) => j.length === 1 && j[0]!.status === 'done')
    expect(onA.map((j) => j.days)).toEqual([['2026-09-01']])
    expect(await until(() => scheduledOn(b), (j) => j.length === 1 && j[0]!.status === 'done')).toEqual(onA)

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

  const getJob = async (r: Replica, id: string) => {
    const res = await r.app.request(`/v1/billing/jobs/${id}`, { headers: ADMIN })
    return { status: res.status, job: res.status === 200 ? ((await res.json()) as Job) : undefined }
  }
  const submit = async (r: Replica, day: string) => {
    const res = await r.app.request('/v1/billing/jobs', { method: 'POST', headers: ADMIN, body: JSON.stringify({ day }) })
    expect(res.status).toBe(202)
    return ((await res.json()) as Job).id
  }
  const settled = (s: { job?: Job }) => s.job?.status === 'done' || s.job?.status === 'failed'

  it('serves a billing job submitted on A from B within seconds, listed on both', async () => {
    const [a, b] = replicas as [Replica, Replica]
    const id = await submit(a, '2026-08-30')
    const seen = await until(() => getJob(b, id), (s) => s.status === 200, 5_000)
    expect(seen.status).toBe(200)
    expect(seen.job!.days).toEqual(['2026-08-30'])
    const done = await until(() => getJob(b, id), settled, 20_000)
    expect(done.job!.status).toBe('done')
    expect(done.job!.versions['2026-08-30']).toBe(1)
    // Whichever replica ran it, both show the same record once it folded the last change.
    expect((await until(() => getJob(a, id), settled)).job).toEqual(done.job)
    const listed = (await (await b.app.request('/v1/billing/jobs', { headers: ADMIN })).json()) as { jobs: Job[] }
    expect(listed.jobs.map((j) => j.id)).toContain(id)
  })

  it('gives concurrent manual closes of one day on A and B distinct consecutive versions', async () => {
    const [a, b] = replicas as [Replica, Replica]
    const day = '2026-08-31'
    const ids = await Promise.all([submit(a, day), submit(b, day), submit(a, day), submit(b, day)])
    const done = await Promise.all(ids.map((id) => until(() => getJob(a, id), settled, 30_000)))
    expect(done.map((d) => d.job!.status)).toEqual(['done', 'done', 'done', 'done'])
    expect(done.map((d) => d.job!.versions[day]).sort()).toEqual([1, 2, 3, 4])
    const versions = await a.billing.snapshots.versions(day)
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4])
    expect(new Set(versions.map((v) => v.jobId)).size).toBe(4)
    // Each version supersedes the one before it: one writer, in order.
    expect(versions.map((v) => v.supersedes)).toEqual([0, 1, 2, 3])
  })

  it('writes the export files of a closed version on the lease holder as part of the close, before any listing', async () => {
    const [a, b] = replicas as [Replica, Replica]
    const day = '2026-08-27'
    const ts = Date.parse(`${day}T10:00:00Z`)
    await log.append(EVENTS_TOPIC, Array.from({ length: 6 }, (_, n) => toRecord(testEnvelope({ type: 'impression', n: 500 + n, impressionId: `imp_x${n}`, ts, receivedAt: ts }))))
    const stored = async () => Number((await (await ch.client.query({ query: `SELECT count() AS n FROM adc.events_raw WHERE toDate(ts) = '${day}'`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n)
    expect(await until(stored, (n) => n === 6, 20_000)).toBe(6)
    const id = await submit(a, day)
    const done = await until(() => getJob(b, id), settled, 30_000)
    expect(done.job!.status).toBe('done')
    const version = done.job!.versions[day]!
    // No listing was asked: the close itself published the version's files, manifest last.
    const store = createLocalObjectStore({ root: exportsDir })
    const raw = await store.get(`${day}/v${version}/manifest.json`)
    expect(raw).toBeDefined()
    const manifest = JSON.parse(raw!.toString('utf8')) as DayExport
    expect(manifest.snapshotVersion).toBe(version)
    expect(manifest.files.map((f) => f.name).sort()).toEqual([
      'advertiser-adv_demo.csv', 'advertiser-adv_demo.parquet', 'publisher-pub_demo.csv', 'publisher-pub_demo.parquet',
    ])
    for (const f of manifest.files) expect((await store.head(`${day}/v${version}/${f.name}`))?.size).toBe(f.bytes)
    // The listing on either replica serves that very manifest.
    const listed = (await (await b.app.request(`/v1/reports/reconcile/${day}/files`, { headers: ADMIN })).json()) as { snapshotVersion: number; files: Array<{ sha256: string }> }
    expect(listed.snapshotVersion).toBe(version)
    expect(listed.files.map((f) => f.sha256).sort()).toEqual(manifest.files.map((f) => f.sha256).sort())
  })

  it('runs jobs on the lease holder only; when it stops, the other replica resumes its queued and running jobs', async () => {
    const [a, b] = replicas as [Replica, Replica]
    const [holder, other] = a.lease.held() ? [a, b] : [b, a]
    expect(other.lease.held()).toBe(false)
    // The holder's executor dies; its lease is still held (a hung process, until its session ends).
    await holder.billing.stop()
    const queuedId = await submit(other, '2026-08-28')
    const runningId = await submit(holder, '2026-08-29')
    const seen = await until(() => getJob(holder, runningId), (s) => s.status === 200)
    // As if the dead holder had started it: the record says running, half done.
    await holder.jobStore.update({ ...seen.job!, requestedBy: 'admin_demo', status: 'running', startedAt: now, progress: 0.5 })
    await new Promise((r) => setTimeout(r, 1_000))
    // Not the holder: the other replica leaves both alone.
    expect((await getJob(other, queuedId)).job!.status).toBe('queued')
    expect((await getJob(other, runningId)).job!.status).toBe('running')
    await holder.lease.release()
    await other.lease.whenHeld()
    const done = await Promise.all([queuedId, runningId].map((id) => until(() => getJob(holder, id), settled, 30_000)))
    expect(done.map((d) => d.job!.status)).toEqual(['done', 'done'])
    expect(done[0]!.job!.versions['2026-08-28']).toBe(1)
    expect(done[1]!.job!.versions['2026-08-29']).toBe(1)
    expect((await other.billing.snapshots.versions('2026-08-29')).map((v) => [v.version, v.jobId])).toEqual([[1, runningId]])
  })

  it('promotes a reprocess job on a replica without the lease through the holder, once', async () => {
    const [a, b] = replicas as [Replica, Replica]
    const [holder, other] = a.lease.held() ? [a, b] : [b, a]
    const day = '2026-08-28'
    const res = await other.app.request('/v1/reprocess', {
      method: 'POST', headers: ADMIN, body: JSON.stringify({ from: day, to: day, reason: 'fleet', modelVersion: 'ivt-2026.12.1' }),
    })
    expect(res.status).toBe(202)
    const { id } = (await res.json()) as Job
    const done = await until(() => getJob(other, id), settled, 30_000)
    expect(done.job!.versions[day]).toBe(2)
    const promoted = await other.app.request(`/v1/reprocess/${id}/promote`, { method: 'POST', headers: ADMIN })
    expect(promoted.status).toBe(200)
    expect(((await promoted.json()) as Job).promotedVersions).toEqual({ [day]: 3 })
    expect((await holder.app.request(`/v1/reprocess/${id}/promote`, { method: 'POST', headers: ADMIN })).status).toBe(409)
    expect((await holder.billing.snapshots.versions(day)).map((v) => [v.version, v.status])).toEqual([[1, 'final'], [2, 'candidate'], [3, 'final']])
  })
})
