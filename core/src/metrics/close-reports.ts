import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import { accountingReport, reconcileReport, type ReportDeps } from '../api/routes/reports.js'
import { addDays, dayOf } from '../billing/days.js'
import { SOLE_LEASE, type Lease } from '../billing/lease.js'

export interface CloseReportsOptions {
  deps: ReportDeps
  registry: Registry
  logger: Logger
  /** Only the holder runs the reports (the replica that runs the T+1 close). @default always held */
  lease?: Lease
  clock?: () => number
  /** How often to look for a new final snapshot version. @default 60_000 */
  intervalMs?: number
  /** Days before today whose closes are watched (and keep their gauges). @default 3 */
  lookbackDays?: number
}

/**
 * Runs the reconcile and accounting reports by themselves after each close: whenever a day gets a
 * new final snapshot version (the T+1 close, a re-close, a promotion), both reports run for that
 * day and their verdicts become gauges labelled by day, which the alert rules watch
 * (ops/prometheus/alerts.yml: AdcAccountingImbalance, AdcStreamBatchDrift, AdcCloseReportsMissing).
 */
export function createCloseReports(options: CloseReportsOptions) {
  const { deps, registry, logger } = options
  const lease = options.lease ?? SOLE_LEASE
  const clock = options.clock ?? Date.now
  const lookback = options.lookbackDays ?? 3
  const registers = [registry]
  const gauge = (name: string, help: string, labelNames: string[] = ['day']) =>
    (registry.getSingleMetric(name) as Gauge<string> | undefined) ?? new Gauge({ name, help, labelNames, registers })
  const drift = gauge('adc_reconcile_drift_ratio', 'After the close: |stream - final snapshot| / snapshot, impressions plus clicks over all campaigns of the day')
  const unexplained = gauge('adc_reconcile_unexplained_events', 'After the close: stream-vs-snapshot differences no category explains (absolute, impressions plus clicks)')
  const unbalanced = gauge('adc_accounting_unbalanced_publishers', 'After the close: publishers whose accounting invariant does not hold for the day')
  const missing = gauge('adc_accounting_in_flight_or_missing_events', 'After the close: edge accepted minus core accepted, summed over publishers')
  const copies = gauge('adc_accounting_log_copies', 'After the close: log records repeating an accepted envelope (a produce retried after it was stored), counted once and kept as duplicate_delivery; summed over publishers')
  const version = gauge('adc_close_report_snapshot_version', 'The final snapshot version the reports of the day ran against')
  const lastSuccess = gauge('adc_close_report_last_success_timestamp_seconds', 'When the reports after a close last succeeded', [])
  const runs = (registry.getSingleMetric('adc_close_reports_total') as Counter<string> | undefined) ??
    new Counter({ name: 'adc_close_reports_total', help: 'Report runs after a close, by result', labelNames: ['result'], registers })

  /** Day → final version already reported. */
  const reported = new Map<string, number>()
  let timer: NodeJS.Timeout | undefined
  let running: Promise<string[]> | undefined

  async function runDay(day: string, v: number): Promise<void> {
    const now = clock()
    const rec = await reconcileReport(deps, day, now)
    const acc = await accountingReport(deps, day)
    let diff = 0
    let base = 0
    let unexplainedSum = 0
    for (const c of rec.campaigns) {
      diff += Math.abs(c.difference.impressions) + Math.abs(c.difference.clicks)
      base += (c.snapshot?.impressions ?? 0) + (c.snapshot?.clicks ?? 0)
      unexplainedSum += Math.abs(c.unexplained.impressions) + Math.abs(c.unexplained.clicks)
    }
    drift.set({ day }, base > 0 ? diff / base : diff > 0 ? 1 : 0)
    unexplained.set({ day }, unexplainedSum)
    unbalanced.set({ day }, acc.publishers.filter((p) => !p.balanced).length)
    missing.set({ day }, acc.publishers.reduce((n, p) => n + p.differences.inFlightOrMissing, 0))
    copies.set({ day }, acc.publishers.reduce((n, p) => n + p.core.logCopies, 0))
    version.set({ day }, v)
    lastSuccess.set(now / 1000)
    logger.info({ day, version: v, drift: base > 0 ? diff / base : diff, unexplained: unexplainedSum, balanced: acc.balanced }, 'close reports done')
  }

  /** One pass: reports every watched day whose latest final version was not reported yet. Returns those days. */
  async function checkOnce(): Promise<string[]> {
    if (!lease.held()) return []
    const to = addDays(dayOf(clock()), -1)
    const from = addDays(to, -(lookback - 1))
    const latest = new Map<string, number>()
    for (const v of await deps.billing.snapshots.versionsInRange(from, to)) {
      if (v.status === 'final') latest.set(v.day, Math.max(latest.get(v.day) ?? 0, v.version))
    }
    const done: string[] = []
    for (const [day, v] of [...latest].sort()) {
      if (reported.get(day) === v) continue
      try {
        await runDay(day, v)
        reported.set(day, v)
        runs.inc({ result: 'ok' })
        done.push(day)
      } catch (err) {
        runs.inc({ result: 'failed' })
        logger.error({ err, day, version: v }, 'close report failed; retried on the next check')
      }
    }
    // Days that left the window stop being exported (one label set per watched day).
    for (const day of [...reported.keys()]) {
      if (day >= from) continue
      reported.delete(day)
      for (const g of [drift, unexplained, unbalanced, missing, version]) g.remove({ day })
    }
    return done
  }

  function check(): Promise<string[]> {
    running ??= checkOnce().finally(() => (running = undefined))
    return running
  }

  return {
    check,
    start(): void {
      timer = setInterval(() => void check().catch((err) => logger.error({ err }, 'close report check failed')), options.intervalMs ?? 60_000)
      timer.unref()
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer)
      await running?.catch(() => undefined)
    },
  }
}
