import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient, type ClientOptions, type Dropped } from '@adc/sdk'
import { mintClickToken } from '@adc/sdk/server'
import { ROOT, type EdgeHandle } from './system.js'
import { conformanceSystem, type Tenant } from './conformance.js'

/**
 * The JS SDK against the real edge (workerd via wrangler dev) and core: whatever the network and
 * the process do, every event the app hands over is counted exactly once, or reported back to the
 * app with a reason code. Counts are read from core's realtime metrics on a campaign of each test's
 * own, so the tests cannot see each other's events.
 */
const UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148'
const sys = conformanceSystem('')
const { runId, tenant, counted, books, expectExactlyOnce } = sys

let edge: EdgeHandle

beforeAll(async () => {
  ;({ edge } = await sys.start())
}, 240_000)

afterAll(() => sys.stop())

function impression(t: Tenant, i: number) {
  return { adId: 'ad_sdk', campaignId: t.campaignId, requestId: `req_${i}`, impressionId: `imp_${t.campaignId}_${i}`, ua: UA, ip: `198.51.${Math.floor(i / 250) % 250}.${i % 250}` }
}

function client(t: Tenant, extra: Partial<ClientOptions>) {
  const dropped: Dropped[] = []
  const c = createClient({
    endpoint: edge.url, publisherId: t.publisherId, auth: { serverKey: t.apiKey }, flushAt: 20, flushIntervalMs: 0,
    backoff: { baseMs: 100, maxMs: 2000 }, defaults: { channel: 'app', device: 'mobile' }, lifecycle: [],
    onRejected: (d) => dropped.push(d), ...extra,
  })
  return { c, dropped }
}

/** Flushes until nothing is queued, sleeping through each scheduled retry. */
async function drain(c: ReturnType<typeof createClient>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await c.flush()
    if (r.pending === 0) return
    if (Date.now() > deadline) throw new Error(`still ${r.pending} queued`)
    await new Promise((done) => setTimeout(done, r.retryInMs ?? 50))
  }
}

describe('JS SDK conformance against the real edge and core', () => {
  it('offline for a while, then a network that loses answers, then online: every event counted exactly once', async () => {
    const t = await tenant('offline')
    let mode: 'offline' | 'lossy' | 'online' = 'offline'
    let lostAnswers = 0
    const { c, dropped } = client(t, {
      auth: { keyId: t.signingKeyId, secret: t.signingSecret },
      async fetch(url, init) {
        if (mode === 'offline') throw new TypeError('fetch failed: offline')
        const res = await fetch(url, init)
        // The edge stored the batch, the app never hears it: the resend must be a duplicate.
        if (mode === 'lossy' && lostAnswers++ % 2 === 0) throw new TypeError('fetch failed: connection reset')
        return res
      },
    })
    for (let i = 0; i < 120; i++) await c.impression(impression(t, i))
    await new Promise((r) => setTimeout(r, 1500))
    expect(c.stats()).toMatchObject({ delivered: 0, queued: 120 })
    expect(c.stats().retries).toBeGreaterThan(0)
    mode = 'lossy'
    for (let i = 120; i < 200; i++) await c.impression(impression(t, i))
    while (c.stats().queued > 0) {
      const r = await c.flush()
      await new Promise((done) => setTimeout(done, r.retryInMs ?? 50))
    }
    mode = 'online'
    await drain(c)
    await c.shutdown()
    expect(lostAnswers, 'the edge stored a batch whose answer was lost').toBeGreaterThan(1)
    expect(dropped).toEqual([])
    expect(c.stats()).toMatchObject({ delivered: 200, dropped: 0, queued: 0 })
    await expectExactlyOnce(t, 200)
  })

  it('a process killed with SIGKILL mid-flush and restarted on its file queue loses nothing and doubles nothing', async () => {
    const t = await tenant('crash')
    const queueFile = join(mkdtempSync(join(ROOT, '.cache', 'e2e', 'sdk-')), 'queue.json')
    const env = {
      SDK_ENDPOINT: edge.url, SDK_PUBLISHER: t.publisherId, SDK_KEY_ID: t.signingKeyId, SDK_SECRET: t.signingSecret,
      SDK_QUEUE_FILE: queueFile, SDK_CAMPAIGN: t.campaignId, SDK_EVENTS: '1200', SDK_RUN: runId,
    }
    const run = (mode: string, until: RegExp) => new Promise<{ out: string; code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/e2e/sdk-child.ts'], { cwd: ROOT, env: { ...process.env, ...env, SDK_MODE: mode }, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString()
        if (until.test(out) && mode === 'produce') child.kill('SIGKILL')
      })
      child.stderr.on('data', (b: Buffer) => { out += b.toString() })
      child.once('error', reject)
      child.once('exit', (code, signal) => resolve({ out, code, signal }))
    })
    const first = await run('produce', /answered/)
    expect(first.signal, first.out).toBe('SIGKILL')
    expect(first.out).toContain('queued')
    const second = await run('resume', /done/)
    expect(second.code, second.out).toBe(0)
    const stats = JSON.parse(/done (.*)/.exec(second.out)![1]!) as { delivered: number; dropped: number; queued: number }
    // The restart resent the whole queue, the batch the edge had already stored included.
    expect(stats, second.out.slice(0, 2000)).toMatchObject({ delivered: 1200, dropped: 0, queued: 0 })
    const pub = await expectExactlyOnce(t, 1200)
    expect(pub.edge.duplicate, 'the killed run had a batch stored that its queue still held').toBeGreaterThanOrEqual(500)
  })

  it('a 429 storm: the client waits as long as Retry-After says, then everything is delivered', async () => {
    const t = await tenant('storm', { perSecond: 10, burst: 20 })
    const answers: Array<{ at: number; status: number; retryAfter: number }> = []
    const { c, dropped } = client(t, {
      async fetch(url, init) {
        const at = Date.now()
        const res = await fetch(url, init)
        answers.push({ at, status: res.status, retryAfter: Number(res.headers.get('retry-after') ?? 0) })
        return res
      },
    })
    // 20 events every 0.4 s against 10 events/s: most flushes meet an empty bucket.
    for (let i = 0; i < 200; i++) {
      await c.impression(impression(t, i))
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 400))
    }
    await drain(c)
    await c.shutdown()
    const limited = answers.filter((a) => a.status === 429)
    expect(limited.length, JSON.stringify(answers)).toBeGreaterThan(1)
    answers.forEach((a, i) => {
      const next = answers[i + 1]
      if (a.status === 429 && next) expect(next.at - a.at, 'no request before Retry-After').toBeGreaterThanOrEqual(a.retryAfter * 1000 - 50)
    })
    expect(dropped).toEqual([])
    expect(c.stats()).toMatchObject({ delivered: 200, dropped: 0, queued: 0 })
    await expectExactlyOnce(t, 200)
  })

  it('malformed input from the app: each bad event comes back to onRejected with its code, the rest are delivered', async () => {
    const t = await tenant('malformed')
    const { c, dropped } = client(t, { flushAt: 1000 })
    // An app's own events carry no `ua`: the edge judges the SDK's User-Agent, which must pass the IVT rules.
    const good = await Promise.all(Array.from({ length: 30 }, (_, i) => {
      const { ua: _ua, ...fields } = impression(t, i)
      return c.impression(fields)
    }))
    const badGeo = await c.impression({ ...impression(t, 100), geo: 'usa' })
    const badId = await c.impression({ ...impression(t, 101), adId: 'has spaces' })
    const stale = await c.impression({ ...impression(t, 102), ts: Date.now() - 25 * 3600_000 })
    const otherPublisher = await c.impression({ ...impression(t, 103), publisherId: 'pub_demo' })
    await drain(c)
    await c.shutdown()
    expect(good).toHaveLength(30)
    expect(dropped.map((d) => [d.eventId, d.code]).sort()).toEqual([
      [badGeo, 'invalid_event'], [badId, 'invalid_event'], [stale, 'clock_skew'], [otherPublisher, 'publisher_mismatch'],
    ].sort())
    expect(c.stats()).toMatchObject({ delivered: 30, dropped: 4, queued: 0 })
    await expectExactlyOnce(t, 30)
    const billed = await books(t.publisherId)
    expect(billed?.core.billed, JSON.stringify(billed)).toBe(30)
  })

  it('inside an app (app-scope request key): a click with the ad server\'s clickToken is delivered and counted, a tokenless one comes back as click_token_required', async () => {
    const t = await tenant('appkey', undefined, 'app')
    const { c, dropped } = client(t, { auth: { keyId: t.signingKeyId, secret: t.signingSecret } })
    const imps = Array.from({ length: 20 }, (_, i) => impression(t, i))
    for (const imp of imps) await c.impression(imp)
    const clicks: string[] = []
    for (const imp of imps.slice(0, 10)) {
      const { ip: _ip, ...fields } = imp
      const clickToken = await mintClickToken({ impressionId: imp.impressionId, campaignId: imp.campaignId, adId: imp.adId, publisherId: t.publisherId, requestId: imp.requestId, url: 'https://advertiser.example/l' }, { keyId: t.tokenKeyId, secret: t.tokenSecret })
      clicks.push(await c.click({ ...fields, clickId: `clk_${imp.impressionId}`, clickToken }))
    }
    const { ip: _ip, ...last } = imps[10]!
    const tokenless = await c.click({ ...last, clickId: `clk_${last.impressionId}` })
    await drain(c)
    await c.shutdown()
    expect(dropped.map((d) => [d.eventId, d.code])).toEqual([[tokenless, 'click_token_required']])
    expect(c.stats()).toMatchObject({ delivered: 30, dropped: 1, queued: 0 })
    expect(clicks).toHaveLength(10)
    await expectExactlyOnce(t, 20, 30)
  })

  it('a browser-style public key goes through the beacon route and is counted once, resends included', async () => {
    const t = await tenant('beacon')
    let calls = 0
    const { c, dropped } = client(t, {
      auth: { publicKey: t.publicKey },
      async fetch(url, init) {
        const res = await fetch(url, init)
        if (calls++ === 0) throw new TypeError('fetch failed: connection reset')
        return res
      },
    })
    for (let i = 0; i < 50; i++) await c.impression(impression(t, i))
    await drain(c)
    await c.shutdown()
    expect(dropped).toEqual([])
    expect(c.stats()).toMatchObject({ delivered: 50, queued: 0 })
    await expectExactlyOnce(t, 50)
  })
})
