import { Gauge, type Registry } from 'prom-client'
import type { Job } from '../billing/jobs.js'

/** The most recent jobs the gauge looks at (newest first; a day's latest close is among them). */
const RECENT_JOBS = 500

/**
 * Days whose latest close failed: of the recent billing jobs, the newest per day (job ids are ULIDs:
 * a retried scheduled close keeps its id, a manual close is newer), counted when it is `failed`.
 * Such a day stays at its previous version (or unbilled) until a close succeeds: the alert
 * AdcBillingCloseFailed (ops/prometheus/alerts.yml) watches this.
 */
export function failedCloseDays(jobs: Job[]): string[] {
  const latest = new Map<string, Job>()
  for (const job of jobs) {
    if (job.kind !== 'billing') continue
    for (const day of job.days) {
      const seen = latest.get(day)
      if (!seen || job.id > seen.id) latest.set(day, job)
    }
  }
  return [...latest].filter(([, job]) => job.status === 'failed').map(([day]) => day).sort()
}

/** `adc_billing_failed_close_days`, read from the (fleet-wide) job store at each scrape. */
export function registerBillingJobMetrics(registry: Registry, jobs: { list(limit?: number): Job[] }): void {
  if (registry.getSingleMetric('adc_billing_failed_close_days')) return
  new Gauge({
    name: 'adc_billing_failed_close_days',
    help: 'Days whose latest close (billing job) failed: they stay at their previous version until a close succeeds',
    registers: [registry],
    collect() {
      this.set(failedCloseDays(jobs.list(RECENT_JOBS)).length)
    },
  })
}
