import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import type { Job } from '../billing/jobs.js'
import { failedCloseDays, registerBillingJobMetrics } from './billing-jobs.js'

const job = (id: string, day: string, status: Job['status'], kind: Job['kind'] = 'billing'): Job =>
  ({ id, kind, days: [day], status, modelVersion: 'current', reason: '', requestedBy: 'scheduler', createdAt: 0, progress: 0, versions: {} }) as unknown as Job

describe('failed close days', () => {
  it("counts a day whose newest close failed, not one a later close took, nor reprocess jobs", () => {
    const jobs = [
      job('01A', '2026-11-10', 'failed'), job('01B', '2026-11-10', 'done'), // a manual close after the failure
      job('01C', '2026-11-11', 'done'), job('01D', '2026-11-11', 'failed'), // the latest close failed
      job('01E', '2026-11-12', 'failed', 'reprocess'),
      job('01F', '2026-11-13', 'running'),
    ]
    expect(failedCloseDays(jobs)).toEqual(['2026-11-11'])
  })

  it('is exported as a gauge read at each scrape', async () => {
    const registry = new Registry()
    const jobs: Job[] = []
    registerBillingJobMetrics(registry, { list: () => jobs })
    const value = async () => (await registry.getSingleMetric('adc_billing_failed_close_days')!.get()).values[0]!.value
    expect(await value()).toBe(0)
    jobs.push(job('01A', '2026-11-10', 'failed'))
    expect(await value()).toBe(1)
    expect(await registry.metrics()).toContain('adc_billing_failed_close_days 1')
  })
})
