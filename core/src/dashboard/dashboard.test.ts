import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { insertRollup, insertRows, rawEvent } from '../testing/api.js'
import { addDays, dayOf } from '../billing/days.js'
import { DEMO_DEFAULTS } from '../tenants/tenant-store.js'
import { chromiumPath, launchChromium } from './browser.js'
import { describeNeeding } from '../testing/needs.js'
import { useApiEnv } from '../testing/api-env.js'

const needChromium = { what: 'Chromium', available: chromiumPath() !== undefined, howTo: 'install Debian `chromium` (.ci/run does) or set CHROMIUM_PATH' }

describeNeeding('dashboard in headless Chromium', needChromium, () => describe('dashboard in headless Chromium', () => {
  const env = useApiEnv({ tempPrefix: 'adc-dash-' })
  let server: ServerType
  let base = ''
  let browser: Browser
  const now = Date.now()
  const minute = Math.floor(now / 60_000) * 60_000
  const yesterday = addDays(dayOf(now), -1)

  beforeAll(async () => {
    // Inside the last hour, and a few hours back (only in the 24 h view).
    await insertRollup(env.ch.client, 'adc', [
      { minute: minute - 5 * 60_000, campaign: 'cmp_demo_cpm', geo: 'US', device: 'mobile', impressions: 120, clicks: 6, users: ['a', 'b', 'c'], lastReceived: now - 20_000, measured: 100, viewable: 60 },
      { minute: minute - 20 * 60_000, campaign: 'cmp_demo_cpm', geo: 'DE', device: 'desktop', impressions: 80, clicks: 2, ivtImpressions: 7, users: ['d'] },
      { minute: minute - 5 * 3_600_000, campaign: 'cmp_demo_cpm', geo: 'FR', device: 'tablet', impressions: 300, clicks: 9, users: ['e'] },
    ])
    await insertRows(env.ch.client, 'adc.rollup_ivt_minute', [
      { minute: new Date(minute - 20 * 60_000).toISOString().slice(0, 19).replace('T', ' '), campaign_id: 'cmp_demo_cpm', publisher_id: 'pub_demo', event_type: 'impression', reason: 'givt_known_bot', events: 7 },
    ])
    const y = Date.parse(`${yesterday}T10:00:00Z`)
    await insertRows(env.ch.client, 'adc.events_raw', Array.from({ length: 1500 }, (_, i) => rawEvent({ key: `d${i}`, imp: `dimp${i}`, campaign: 'cmp_demo_cpm', ts: y + i })))
    await env.billing.submitBilling(yesterday, 'test')
    await env.billing.idle()
    server = serve({ fetch: env.app.fetch, port: 0, hostname: '127.0.0.1' })
    await new Promise<void>((r) => server.once('listening', () => r()))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    browser = await launchChromium()
  })

  afterAll(async () => {
    await browser?.close()
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
  })

  async function apiTotals(from: string, to: string, granularity: string) {
    const res = await fetch(`${base}/v1/metrics/realtime?campaignId=cmp_demo_cpm&from=${from}&to=${to}&granularity=${granularity}`, {
      headers: { Authorization: `Bearer ${DEMO_DEFAULTS.advertiserKey}` },
    })
    expect(res.status).toBe(200)
    return ((await res.json()) as { totals: Record<string, number> }).totals
  }

  it('signs in with the demo key, shows numbers that match the API, switches range, exports CSV', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true })
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(`${base}/dashboard`)
    await page.fill('#api-key', DEMO_DEFAULTS.advertiserKey)
    await page.click('#sign-in-form button[type=submit]')
    await page.waitForSelector('#app[data-loaded]')
    await page.waitForSelector('#billing tbody tr[data-day]')

    expect(await page.locator('#campaigns button').allTextContents()).toEqual([
      expect.stringContaining('Demo CPC campaign'),
      expect.stringContaining('Demo CPM campaign'),
    ])
    await page.click('#campaigns button[data-campaign="cmp_demo_cpm"]')
    await page.waitForSelector('#app[data-campaign="cmp_demo_cpm"]')
    const shown = async (id: string) => Number(await page.getAttribute(`#${id}`, 'data-value'))
    const app = page.locator('#app')
    let from = (await app.getAttribute('data-from'))!
    let to = (await app.getAttribute('data-to'))!
    let api = await apiTotals(from, to, 'minute')
    expect(api.impressions).toBe(200)
    expect(await shown('t-impressions')).toBe(api.impressions)
    expect(await shown('t-clicks')).toBe(api.clicks)
    expect(await shown('t-uniques')).toBe(api.uniques)
    expect(await shown('t-spend')).toBe(api.spendMicros)
    expect(await shown('t-viewable')).toBe(api.viewabilityRate)
    expect(await page.textContent('#t-viewable')).toBe('60.00% of 100')
    expect(await page.textContent('#t-impressions')).toBe('200')
    expect(await page.textContent('#t-spend')).toBe('$0.40')
    expect(await page.getAttribute('#by-geo tbody tr[data-key="US"]', 'data-impressions')).toBe('120')
    expect(await page.getAttribute('#by-device tbody tr[data-key="desktop"]', 'data-impressions')).toBe('80')
    expect(await page.textContent('#ivt tbody tr[data-reason="givt_known_bot"]')).toContain('7')
    expect(await page.textContent('#freshness')).toMatch(/data \d+ s behind/)
    expect(await page.textContent(`#billing tr[data-day="${yesterday}"]`)).toContain('final v1')
    expect(await page.getAttribute(`#billing tr[data-day="${yesterday}"] td[data-spend]`, 'data-spend')).toBe('3000000')
    expect(Number(await page.getAttribute('#chart', 'data-points'))).toBeGreaterThanOrEqual(60)
    expect(await page.locator('#chart canvas').count()).toBe(1)

    const loaded = await app.getAttribute('data-loaded')
    await page.click('#ranges button[data-range="24h"]')
    await page.waitForFunction((prev) => document.getElementById('app')!.dataset.loaded !== prev, loaded)
    from = (await app.getAttribute('data-from'))!
    to = (await app.getAttribute('data-to'))!
    api = await apiTotals(from, to, 'hour')
    expect(api.impressions).toBe(500)
    expect(await shown('t-impressions')).toBe(500)
    expect(await shown('t-clicks')).toBe(api.clicks)
    expect(await page.getAttribute('#by-geo tbody tr[data-key="FR"]', 'data-impressions')).toBe('300')

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')])
    const csvPath = join(env.tmp(), 'export.csv')
    await download.saveAs(csvPath)
    const csv = readFileSync(csvPath, 'utf8').trim().split('\r\n')
    expect(csv[0]).toBe('bucket_start_utc,campaign_id,impressions,clicks,ctr,uniques,spend_micros,ivt_impressions,ivt_clicks')
    expect(csv.slice(1).reduce((s, l) => s + Number(l.split(',')[2]), 0)).toBe(500)

    mkdirSync('test-results', { recursive: true })
    await page.screenshot({ path: join('test-results', 'dashboard.png'), fullPage: true })
    expect(errors).toEqual([])
    await page.close()
  })

  it("exports a campaign id a spreadsheet would read as a formula as text (`'-A1`), as the API's CSV does", async () => {
    // `-A1` is a valid id (ID_PATTERN) and, unquoted, a cell reference in a spreadsheet.
    await env.tenants.createCampaign({ id: '-A1', advertiserId: 'adv_demo', name: 'Formula-shaped id', pricing: { model: 'cpm', priceMicros: 2_000_000 } })
    await insertRollup(env.ch.client, 'adc', [{ minute: minute - 3 * 60_000, campaign: '-A1', geo: 'US', device: 'mobile', impressions: 5, clicks: 1, users: ['z'], lastReceived: now - 10_000 }])
    const page = await browser.newPage({ acceptDownloads: true })
    await page.goto(`${base}/dashboard`)
    await page.fill('#api-key', DEMO_DEFAULTS.advertiserKey)
    await page.click('#sign-in-form button[type=submit]')
    await page.waitForSelector('#app[data-loaded]')
    await page.click('#campaigns button[data-campaign="-A1"]')
    await page.waitForSelector('#app[data-campaign="-A1"][data-loaded]')
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')])
    const csvPath = join(env.tmp(), 'formula.csv')
    await download.saveAs(csvPath)
    const rows = readFileSync(csvPath, 'utf8').trim().split('\r\n').slice(1).map((l) => l.split(','))
    expect(rows.length).toBeGreaterThan(0)
    expect(new Set(rows.map((r) => r[1]))).toEqual(new Set(["'-A1"]))
    expect(rows.reduce((sum, r) => sum + Number(r[2]), 0)).toBe(5)
    await page.close()
  })

  it('refuses a wrong key on the sign-in form', async () => {
    const page = await browser.newPage()
    await page.goto(`${base}/dashboard`)
    await page.fill('#api-key', 'ak_wrong')
    await page.click('#sign-in-form button[type=submit]')
    await page.waitForFunction(() => document.getElementById('sign-in-error')!.textContent !== '')
    expect(await page.textContent('#sign-in-error')).toContain('unauthorized')
    expect(await page.isHidden('#app')).toBe(true)
    await page.close()
  })
}))
