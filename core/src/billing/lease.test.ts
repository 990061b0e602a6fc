import { open } from 'lmdb'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrate } from '../clickhouse/client.js'
import { createEmbeddedLog, type EmbeddedLogHandle } from '../log/embedded-log.js'
import { createBillingJobs } from './jobs.js'
import { acquireLogLease, BILLING_LEASE, scheduledJobId } from './lease.js'
import { useBillingEnv } from '../testing/billing-env.js'

const logger = pino({ level: 'silent' })
const env = useBillingEnv({ tempPrefix: 'adc-lease-', billing: false })
let log: EmbeddedLogHandle

beforeAll(async () => {
  log = await createEmbeddedLog({ dir: env.tmp(), logger, idleWaitMs: 50 })
})

afterAll(async () => {
  await log.close()
})

const settle = () => new Promise((r) => setTimeout(r, 300))

describe('lease on the log', () => {
  it('is held by exactly one member, and moves to another when the holder leaves', async () => {
    const a = await acquireLogLease({ log, name: 'test-move', logger })
    const b = await acquireLogLease({ log, name: 'test-move', logger })
    await Promise.race([a.whenHeld(), b.whenHeld()])
    await settle()
    expect([a.held(), b.held()].filter(Boolean)).toHaveLength(1)
    const [holder, other] = a.held() ? [a, b] : [b, a]
    await holder.release()
    await other.whenHeld()
    expect(other.held()).toBe(true)
    expect(holder.held()).toBe(false)
    await other.release()
  })
})

describe('the T+1 scheduler on two replicas', () => {
  it('submits one billing job per day across replicas, and a second scheduler or a retry reuses its snapshot version', async () => {
    const now = Date.parse('2026-10-02T01:00:00Z')
    const replica = async () => {
      const lease = await acquireLogLease({ log, name: BILLING_LEASE, logger })
      const jobs = createBillingJobs({ client: env.ch.client, database: 'adc', tenants: env.tenants, dir: env.tmp(), logger, clock: () => now, lease, closeLookbackDays: 1 })
      return { lease, jobs }
    }
    const a = await replica()
    const b = await replica()
    await Promise.race([a.lease.whenHeld(), b.lease.whenHeld()])
    await settle()
    const ticks = await Promise.all([a.jobs.dailyTick(), b.jobs.dailyTick(), a.jobs.dailyTick(), b.jobs.dailyTick()])
    const submitted = ticks.filter((j) => j !== undefined)
    expect(submitted).toHaveLength(1)
    expect(submitted[0]!.id).toBe(scheduledJobId('2026-10-01'))
    await Promise.all([a.jobs.idle(), b.jobs.idle()])
    expect((await a.jobs.snapshots.versions('2026-10-01')).map((v) => v.version)).toEqual([1])

    // The holder leaves; the other replica takes over and sees the day closed.
    const [holder, other] = a.lease.held() ? [a, b] : [b, a]
    await holder.lease.release()
    await holder.jobs.stop()
    await other.lease.whenHeld()
    expect(await other.jobs.dailyTick()).toBeUndefined()
    // Even a replica whose ClickHouse lacks that close does not close the day again: the claim is on the log.
    await migrate(env.ch.client, 'adc_elsewhere')
    const elsewhere = createBillingJobs({ client: env.ch.client, database: 'adc_elsewhere', tenants: env.tenants, dir: env.tmp(), logger, clock: () => now, lease: other.lease, closeLookbackDays: 1 })
    expect(await elsewhere.dailyTick()).toBeUndefined()
    await elsewhere.stop()

    // A replica that had the same scheduled job running when it died resumes it: same version, none added.
    const dir = env.tmp()
    const raw = open({ path: dir, compression: false })
    const id = scheduledJobId('2026-10-01')
    await raw.put(`job:${id}`, {
      id, kind: 'billing', status: 'running', progress: 0.5, days: ['2026-10-01'], modelVersion: 'current',
      reason: 'daily close (T+1)', requestedBy: 'scheduler', createdAt: now, versions: {},
    })
    await raw.close()
    const resumed = createBillingJobs({ client: env.ch.client, database: 'adc', tenants: env.tenants, dir, logger, clock: () => now, lease: other.lease, closeLookbackDays: 1 })
    resumed.start()
    await resumed.idle()
    expect(resumed.get(id)?.versions['2026-10-01']).toBe(1)
    expect((await resumed.snapshots.versions('2026-10-01')).map((v) => v.version)).toEqual([1])
    await resumed.stop()
    await other.lease.release()
    await other.jobs.stop()
  })

  it('names the scheduled job of a day the same on every replica, and sorts it by the day', () => {
    expect(scheduledJobId('2026-10-01')).toBe(scheduledJobId('2026-10-01'))
    expect(scheduledJobId('2026-10-01')).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/)
    expect(scheduledJobId('2026-10-01') < scheduledJobId('2026-10-02')).toBe(true)
  })
})
