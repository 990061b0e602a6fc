/**
 * Billing and reprocess over one UTC day of raw events in chDB:
 * 1. the billing job (final join with the stream's rules: windows, order, dedupe across midnight);
 * 2. a reprocess of the same day with ivt-2026.12.1 (every event scored in Node, decisions written in
 *    batches, then the candidate snapshot).
 * Each with wall time and the process's peak RSS while it ran (chDB runs in-process, so the engine's
 * memory is in it). Env: BENCH_BILLING_EVENTS (default 10,000,000).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { createBillingJobs } from '../core/src/billing/jobs.js'
import { createClickHouse, migrate } from '../core/src/clickhouse/client.js'
import { PROPERTY_RUNS_DEFAULT } from '../core/src/rules/reference-model.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant } from '../core/src/tenants/tenant-store.js'

const round = (x: number) => Math.round(x * 10) / 10
const mib = (b: number) => Math.round(b / 2 ** 20)

/** Runs fn while sampling RSS every 50 ms; returns its result, seconds and peak RSS in MiB. */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; peakRssMiB: number; rssBeforeMiB: number }> {
  const before = process.memoryUsage.rss()
  let peak = before
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 50)
  const t0 = performance.now()
  try {
    const value = await fn()
    peak = Math.max(peak, process.memoryUsage.rss())
    return { value, seconds: round((performance.now() - t0) / 1000), peakRssMiB: mib(peak), rssBeforeMiB: mib(before) }
  } finally {
    clearInterval(timer)
  }
}

export async function runBillingBench(options: { events?: number } = {}) {
  const events = options.events ?? Number(process.env.BENCH_BILLING_EVENTS ?? 10_000_000)
  const campaigns = 100
  const dir = mkdtempSync(join(tmpdir(), 'adc-billing-bench-'))
  const logger = pino({ level: 'warn' })
  const clickhouse = createClickHouse({ dataDir: join(dir, 'chdb') })
  const tenants = openTenantStore({ dir: join(dir, 'tenants') })
  const billing = createBillingJobs({ client: clickhouse, database: 'adc', tenants, dir: join(dir, 'jobs'), logger })
  try {
    await migrate(clickhouse, 'adc')
    await seedDemoTenant(tenants, DEMO_DEFAULTS)
    for (let i = 0; i < campaigns; i++) {
      await tenants.createCampaign({ id: `cmp_b${i}`, advertiserId: 'adv_demo', pricing: i % 2 ? { model: 'cpc', priceMicros: 300_000 } : { model: 'cpm', priceMicros: 1_500_000 } })
    }
    const dayStart = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 2 * 86_400_000
    const day = new Date(dayStart).toISOString().slice(0, 10)
    // Every 50th event a click on the impression 7 events earlier (2 s later: fast only for the
    // stricter model), 1% bots, 0.5% re-deliveries of the previous event (same key, impression and
    // partition, a later offset); 8 log partitions by impression.
    const t0 = performance.now()
    const chunk = 2_000_000
    for (let offset = 0; offset < events; offset += chunk) {
      const n = Math.min(chunk, events - offset)
      await clickhouse.command({
        query: `INSERT INTO adc.events_raw (event_key, event_type, event_id, impression_id, click_id, campaign_id, ad_id, publisher_id,
            request_id, ts, received_at, channel, device, geo, ua, ip_prefix, billable, reason, ivt_score, ivt_reasons, model_version, joined,
            log_partition, log_offset, processed_at)
          SELECT concat('k', toString(b)) AS key, if(b % 50 = 49, 'click', 'impression') AS et, key,
            concat('imp', toString(if(et = 'click', b - 7, b))) AS impid, if(et = 'click', concat('clk', toString(b)), ''),
            concat('cmp_b', toString(b % ${campaigns})), 'ad_1', 'pub_demo', concat('r', toString(b)),
            fromUnixTimestamp64Milli(toInt64(${dayStart} + intDiv(b * 86399000, ${events}) + if(et = 'click', 2000, 0)), 'UTC') AS t, t + 1, 'web', 'desktop', 'US',
            if(b % 100 = 13, 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'),
            concat('198.51.', toString(b % 200), '.0/24'),
            if(b % 100 = 13 OR n != b, 0, 1),
            multiIf(n != b, 'duplicate_delivery', b % 100 = 13, 'givt_known_bot', ''),
            if(b % 100 = 13 AND n = b, 1.0, 0.0), if(b % 100 = 13 AND n = b, ['givt_known_bot'], []), 'ivt-2026.11.1', toUInt8(et = 'click'),
            toUInt32(if(et = 'click', b - 7, b) % 8), n, t + 2
          FROM (SELECT number + ${offset} AS n, if(n % 200 = 17, n - 1, n) AS b FROM numbers(${n}))`,
      })
    }
    const insertSeconds = round((performance.now() - t0) / 1000)
    console.log(`raw events: ${events} in ${insertSeconds} s`)

    const job = await measured(async () => {
      const j = await billing.submitBilling(day, 'bench')
      await billing.idle()
      return billing.get(j.id)!
    })
    if (job.value.status !== 'done') throw new Error(`billing job ${job.value.status}: ${job.value.error}`)
    const lines = await billing.snapshots.lines(day, job.value.versions[day]!)
    const billingResult = {
      seconds: job.seconds, eventsPerSecond: Math.round(events / Math.max(job.seconds, 0.001)), peakRssMiB: job.peakRssMiB, rssBeforeMiB: job.rssBeforeMiB,
      billedImpressions: lines.reduce((s, l) => s + l.impressions, 0), billedClicks: lines.reduce((s, l) => s + l.clicks, 0),
    }
    console.log('billing job', billingResult)

    const re = await measured(async () => {
      const j = await billing.submitReprocess({ from: day, to: day, reason: 'bench', modelVersion: 'ivt-2026.12.1', requestedBy: 'bench' })
      await billing.idle()
      return billing.get(j.id)!
    })
    if (re.value.status !== 'done') throw new Error(`reprocess ${re.value.status}: ${re.value.error}`)
    const cand = await billing.snapshots.lines(day, re.value.versions[day]!)
    const reprocessResult = {
      seconds: re.seconds, eventsPerSecond: Math.round(events / Math.max(re.seconds, 0.001)), peakRssMiB: re.peakRssMiB, rssBeforeMiB: re.rssBeforeMiB,
      scored: re.value.events?.scored, candidateBilledClicks: cand.reduce((s, l) => s + l.clicks, 0), candidateIvtClicks: cand.reduce((s, l) => s + l.ivtClicks, 0),
    }
    console.log('reprocess', reprocessResult)
    return {
      rawEvents: events, insertSeconds, billingJob: billingResult, reprocess: reprocessResult,
      propertyTest: { generatedDaysPerRun: PROPERTY_RUNS_DEFAULT, env: 'RULES_PROPERTY_RUNS' },
    }
  } finally {
    await billing.stop()
    await tenants.close()
    await clickhouse.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
