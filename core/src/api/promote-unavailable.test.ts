import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openLocalJobStore, type JobStore } from '../billing/job-store.js'
import { createBillingJobs, type BillingJobs, type Job } from '../billing/jobs.js'
import type { Lease } from '../billing/lease.js'
import { openTestClickHouse } from '../testing/api.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createApiApp } from './app.js'

/**
 * A promote asked of a replica that does not hold the billing lease waits for the holder to carry
 * it out; when no holder does in time (none alive, or it refused the request), the answer is a
 * retriable 503 with a registered code, not an internal error.
 */
const logger = pino({ level: 'silent' })
const ADMIN = { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}` }
const dir = mkdtempSync(join(tmpdir(), 'adc-promote-'))
/** A lease some other, silent replica holds for good. */
const NEVER_HELD: Lease = { held: () => false, whenHeld: () => new Promise(() => undefined), claim: async () => false, release: async () => undefined }
let ch: Awaited<ReturnType<typeof openTestClickHouse>>
let tenants: TenantStore
let store: JobStore
let billing: BillingJobs

beforeAll(async () => {
  ch = await openTestClickHouse()
  tenants = openTenantStore({ dir: join(dir, 'tenants') })
  await seedDemoTenant(tenants, DEMO_DEFAULTS)
  store = openLocalJobStore(join(dir, 'jobs'))
  billing = createBillingJobs({ client: ch.client, database: 'adc', tenants, store, logger, lease: NEVER_HELD, promoteTimeoutMs: 300 })
})

afterAll(async () => {
  await billing.stop()
  await store.close()
  await tenants.close()
  await ch.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('promote on a replica without the billing lease', () => {
  it('answers 503 billing_executor_unavailable with Retry-After when the holder does not carry it out in time', async () => {
    const job: Job = {
      id: '01JD0000000000000000000777', kind: 'reprocess', status: 'done', progress: 1, days: ['2026-08-28'], modelVersion: 'ivt-2026.12.1',
      reason: 'test', requestedBy: 'admin_demo', createdAt: 1, finishedAt: 2, versions: { '2026-08-28': 2 },
    }
    await store.submit(job)
    const app = createApiApp({ clickhouse: ch.client, database: 'adc', tenants, logger, billing })
    const res = await app.request(`/v1/reprocess/${job.id}/promote`, { method: 'POST', headers: ADMIN })
    expect(res.status).toBe(503)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('billing_executor_unavailable')
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
    // The route documents the answer.
    const doc = (await (await app.request('/openapi.json')).json()) as { paths: Record<string, { post?: { responses: Record<string, unknown> } }> }
    expect(Object.keys(doc.paths['/v1/reprocess/{id}/promote']!.post!.responses)).toContain('503')
  })
})
