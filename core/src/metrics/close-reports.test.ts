import pino from 'pino'
import { beforeAll, describe, expect, it } from 'vitest'
import { FIXTURE_DAY, fixtureDay, insertRows, rawEvent } from '../testing/api.js'
import { accountingReport, reconcileReport } from '../api/routes/reports.js'
import { createCloseReports } from './close-reports.js'
import { createMetricsRegistry } from './registry.js'
import { useBillingEnv } from '../testing/billing-env.js'

const logger = pino({ level: 'silent' })
const env = useBillingEnv({ tempPrefix: 'adc-close-reports-', clock: () => now })
const now = Date.parse(`${FIXTURE_DAY}T00:00:00Z`) + 86_400_000 + 3_600_000

const D = Date.parse(`${FIXTURE_DAY}T00:00:00Z`)

beforeAll(async () => {
  await insertRows(env.ch.client, 'adc.events_raw', [
    ...fixtureDay(),
    // i3's envelope once more, a record later in the log (a produce the edge retried after it was stored).
    rawEvent({ key: 'i3', imp: 'imp3', campaign: 'cmp_demo_cpm', ts: D + 3 * 3_600_000, geo: 'DE', reason: 'duplicate_delivery', offset: 9 }),
  ])
})

const value = async (registry: ReturnType<typeof createMetricsRegistry>, name: string, day?: string) => {
  const m = await registry.getSingleMetric(name)?.get()
  return m?.values.find((v) => day === undefined || v.labels.day === day)?.value
}

describe('reports after each close', () => {
  it('run once per new final version and export the reports as gauges', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false })
    const deps = { clickhouse: env.ch.client, database: 'adc', billing: env.billing, tenants: env.tenants }
    const reports = createCloseReports({ deps, registry, logger, clock: () => now })
    expect(await reports.check()).toEqual([]) // not closed yet: nothing to report
    expect(await value(registry, 'adc_close_report_last_success_timestamp_seconds')).toBe(0) // never: the alert counts from 1970

    await env.billing.submitBilling(FIXTURE_DAY, 'test')
    await env.billing.idle()
    expect(await reports.check()).toEqual([FIXTURE_DAY])
    const acc = await accountingReport(deps, FIXTURE_DAY)
    const rec = await reconcileReport(deps, FIXTURE_DAY, now)
    expect(await value(registry, 'adc_accounting_unbalanced_publishers', FIXTURE_DAY)).toBe(acc.publishers.filter((p) => !p.balanced).length)
    expect(await value(registry, 'adc_accounting_unbalanced_publishers', FIXTURE_DAY)).toBeGreaterThan(0) // the fixture has no edge stats
    expect(await value(registry, 'adc_accounting_log_copies', FIXTURE_DAY)).toBe(1)
    const diff = rec.campaigns.reduce((n, c) => n + Math.abs(c.difference.impressions) + Math.abs(c.difference.clicks), 0)
    const base = rec.campaigns.reduce((n, c) => n + (c.snapshot?.impressions ?? 0) + (c.snapshot?.clicks ?? 0), 0)
    expect(await value(registry, 'adc_reconcile_drift_ratio', FIXTURE_DAY)).toBeCloseTo(diff / base)
    expect(await value(registry, 'adc_close_report_snapshot_version', FIXTURE_DAY)).toBe(1)
    expect(await value(registry, 'adc_close_report_last_success_timestamp_seconds')).toBe(now / 1000)

    expect(await reports.check()).toEqual([]) // same version: not run again
    await env.billing.submitBilling(FIXTURE_DAY, 'test') // a re-close
    await env.billing.idle()
    expect(await reports.check()).toEqual([FIXTURE_DAY])
    expect(await value(registry, 'adc_close_report_snapshot_version', FIXTURE_DAY)).toBe(2)
  })

  it('runs only on the replica holding the billing lease', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false })
    const notHeld = { held: () => false, whenHeld: () => new Promise<void>(() => {}), claim: async () => false, release: async () => {} }
    const reports = createCloseReports({ deps: { clickhouse: env.ch.client, database: 'adc', billing: env.billing, tenants: env.tenants }, registry, logger, clock: () => now, lease: notHeld })
    expect(await reports.check()).toEqual([])
  })
})
