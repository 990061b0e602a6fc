/**
 * Read-side benchmark, one run on this machine:
 * 1. realtime query latency (p50, p99) through the API over one day of minute rollups for
 *    1,000 campaigns (rows inserted directly, 1,440 minutes x 1,000 campaigns);
 * 2. the billing job's time for one day of N raw events (default 1,000,000; set
 *    BENCH_RAW_EVENTS=10000000 for the 10M figure, which takes minutes on 2 cores);
 * 3. the dashboard's first load in headless Chromium (navigation to numbers on screen).
 *
 *   node --import tsx bench/read-bench.ts
 * Env: BENCH_CAMPAIGNS (1000), BENCH_QUERIES (200), BENCH_RAW_EVENTS (1000000), BENCH_LOADS (5).
 * Writes bench/results/read-bench.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import pino from 'pino'
import { createApiApp } from '../core/src/api/app.js'
import { createBillingJobs } from '../core/src/billing/jobs.js'
import { createClickHouse, migrate } from '../core/src/clickhouse/client.js'
import { chromiumPath, launchChromium } from '../core/src/dashboard/browser.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant } from '../core/src/tenants/tenant-store.js'

export interface ReadBenchResult {
  campaigns: number
  rollupRows: number
  realtime: { queries: number; minuteDayP50Ms: number; minuteDayP99Ms: number; hourByGeoDeviceP50Ms: number; hourByGeoDeviceP99Ms: number }
  billing: { rawEvents: number; insertSeconds: number; jobSeconds: number; eventsPerSecond: number; billedImpressions: number }
  dashboard: { loads: number; firstLoadP50Ms: number; firstLoadMaxMs: number } | { skipped: string }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}
const round = (x: number) => Math.round(x * 10) / 10

export async function runReadBench(options: { campaigns?: number; queries?: number; rawEvents?: number; loads?: number } = {}): Promise<ReadBenchResult> {
  const campaigns = options.campaigns ?? Number(process.env.BENCH_CAMPAIGNS ?? 1000)
  const queries = options.queries ?? Number(process.env.BENCH_QUERIES ?? 200)
  const rawEvents = options.rawEvents ?? Number(process.env.BENCH_RAW_EVENTS ?? 1_000_000)
  const loads = options.loads ?? Number(process.env.BENCH_LOADS ?? 5)
  const dir = mkdtempSync(join(tmpdir(), 'adc-read-bench-'))
  const logger = pino({ level: 'warn' })
  const clickhouse = createClickHouse({ dataDir: join(dir, 'chdb') })
  const tenants = openTenantStore({ dir: join(dir, 'tenants') })
  const billing = createBillingJobs({ client: clickhouse, database: 'adc', tenants, dir: join(dir, 'jobs'), logger })
  try {
    await migrate(clickhouse, 'adc')
    await seedDemoTenant(tenants, DEMO_DEFAULTS)
    for (let i = 0; i < campaigns; i++) {
      await tenants.createCampaign({
        id: `cmp_b${i}`,
        advertiserId: 'adv_demo',
        pricing: i % 2 ? { model: 'cpc', priceMicros: 300_000 } : { model: 'cpm', priceMicros: 1_500_000 },
      })
    }
    const now = Date.now()
    const dayStart = Math.floor(now / 86_400_000) * 86_400_000 - 86_400_000 // yesterday, UTC
    const day = new Date(dayStart).toISOString().slice(0, 10)

    // 1. A day of minute rollups for every campaign, generated inside the engine.
    let t0 = performance.now()
    await clickhouse.command({
      query: `INSERT INTO adc.rollup_minute
        (minute, campaign_id, ad_id, publisher_id, geo, device, impressions, clicks, ivt_impressions, ivt_clicks,
         duplicates, orphan_clicks, repeat_clicks, uniques, last_received_at)
        SELECT toDateTime(${dayStart / 1000} + (number % 1440) * 60, 'UTC') AS m, concat('cmp_b', toString(intDiv(number, 1440))),
          concat('ad_', toString(number % 3)), 'pub_demo', ['US', 'DE', 'FR', 'GB', 'JP'][number % 5 + 1], ['desktop', 'mobile', 'tablet'][number % 3 + 1],
          toInt64(50 + number % 50), toInt64(number % 7), toInt64(number % 3), 0, 0, 0, 0,
          uniqState(concat('u', toString(number % 997))), toDateTime64(m, 3, 'UTC') + 30
        FROM numbers(${campaigns * 1440}) GROUP BY number`,
    })
    const rollupRows = campaigns * 1440
    console.log(`rollups: ${rollupRows} rows in ${round((performance.now() - t0) / 1000)} s`)

    const app = createApiApp({ clickhouse, database: 'adc', tenants, billing, logger })
    const auth = { headers: { Authorization: `Bearer ${DEMO_DEFAULTS.advertiserKey}` } }
    const from = new Date(dayStart).toISOString()
    const to = new Date(dayStart + 86_400_000).toISOString()
    async function timeQueries(extra: string): Promise<number[]> {
      const times: number[] = []
      for (let i = 0; i < queries; i++) {
        const c = `cmp_b${(i * 7919) % campaigns}`
        const start = performance.now()
        const res = await app.request(`/v1/metrics/realtime?campaignId=${c}&from=${from}&to=${to}${extra}`, auth)
        const body = (await res.json()) as { series?: unknown[] }
        times.push(performance.now() - start)
        if (res.status !== 200 || !body.series?.length) throw new Error(`realtime query failed: ${res.status} ${JSON.stringify(body).slice(0, 200)}`)
      }
      return times.sort((a, b) => a - b)
    }
    await timeQueries('&granularity=minute') // warm-up pass (page cache, marks)
    const minute = await timeQueries('&granularity=minute')
    const hourly = await timeQueries('&granularity=hour&dimensions=geo,device')
    const realtime = {
      queries,
      minuteDayP50Ms: round(quantile(minute, 0.5)),
      minuteDayP99Ms: round(quantile(minute, 0.99)),
      hourByGeoDeviceP50Ms: round(quantile(hourly, 0.5)),
      hourByGeoDeviceP99Ms: round(quantile(hourly, 0.99)),
    }
    console.log('realtime', realtime)

    // 2. A day of raw events (2% clicks on earlier impressions, 1% IVT, 0.5% duplicates), then the billing job.
    t0 = performance.now()
    const chunk = 2_000_000
    for (let offset = 0; offset < rawEvents; offset += chunk) {
      const n = Math.min(chunk, rawEvents - offset)
      await clickhouse.command({
        query: `INSERT INTO adc.events_raw (event_key, event_type, event_id, impression_id, click_id, campaign_id, ad_id, publisher_id,
            request_id, ts, received_at, channel, device, geo, billable, reason, ivt_score, ivt_reasons, model_version, joined, processed_at)
          SELECT concat('k', toString(n)) AS key, if(n % 50 = 49, 'click', 'impression') AS et, key,
            concat('imp', toString(if(et = 'click', n - 7, n))), if(et = 'click', concat('clk', toString(n)), ''),
            concat('cmp_b', toString(n % ${campaigns})), 'ad_1', 'pub_demo', concat('r', toString(n)),
            fromUnixTimestamp64Milli(toInt64(${dayStart} + intDiv(n * 86399000, ${rawEvents})), 'UTC') AS t, t + 1, 'web', 'desktop', 'US',
            if(n % 100 = 13 OR n % 200 = 17, 0, 1),
            multiIf(n % 100 = 13, 'givt_known_bot', n % 200 = 17, 'duplicate_delivery', ''),
            if(n % 100 = 13, 1.0, 0.0), if(n % 100 = 13, ['givt_known_bot'], []), 'ivt-1', toUInt8(et = 'click'), t + 2
          FROM (SELECT number + ${offset} AS n FROM numbers(${n}))`,
      })
    }
    const insertSeconds = round((performance.now() - t0) / 1000)
    console.log(`raw events: ${rawEvents} in ${insertSeconds} s`)
    t0 = performance.now()
    const job = await billing.submitBilling(day, 'bench')
    await billing.idle()
    const jobSeconds = round((performance.now() - t0) / 1000)
    const done = billing.get(job.id)!
    if (done.status !== 'done') throw new Error(`billing job ${done.status}: ${done.error}`)
    const lines = await billing.snapshots.lines(day, done.versions[day]!)
    const billingResult = {
      rawEvents,
      insertSeconds,
      jobSeconds,
      eventsPerSecond: Math.round(rawEvents / Math.max(jobSeconds, 0.001)),
      billedImpressions: lines.reduce((s, l) => s + l.impressions, 0),
    }
    console.log('billing', billingResult)

    // 3. Dashboard first load: navigation with a signed-in session to numbers on screen, fresh context each time.
    let dashboard: ReadBenchResult['dashboard']
    if (!chromiumPath()) {
      dashboard = { skipped: 'Chromium not found' }
    } else {
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
      await new Promise<void>((r) => server.once('listening', () => r()))
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const browser = await launchChromium()
      const times: number[] = []
      try {
        for (let i = 0; i < loads; i++) {
          const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } })
          await context.addInitScript((key) => sessionStorage.setItem('adc.apiKey', key), DEMO_DEFAULTS.advertiserKey)
          const page = await context.newPage()
          const start = performance.now()
          await page.goto(`${base}/dashboard`)
          await page.waitForSelector('#app[data-loaded]')
          times.push(performance.now() - start)
          await context.close()
        }
      } finally {
        await browser.close()
        await new Promise<void>((r) => server.close(() => r()))
      }
      times.sort((a, b) => a - b)
      dashboard = { loads, firstLoadP50Ms: round(quantile(times, 0.5)), firstLoadMaxMs: round(times.at(-1)!) }
    }
    console.log('dashboard', dashboard)
    return { campaigns, rollupRows, realtime, billing: billingResult, dashboard }
  } finally {
    await billing.stop()
    await tenants.close()
    await clickhouse.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1]?.endsWith('read-bench.ts')) {
  const result = await runReadBench()
  mkdirSync(join('bench', 'results'), { recursive: true })
  writeFileSync(join('bench', 'results', 'read-bench.json'), JSON.stringify({ at: new Date().toISOString(), ...result }, null, 2))
  console.log(JSON.stringify(result, null, 2))
}
