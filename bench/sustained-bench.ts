/**
 * Sustained load: the whole embedded system (core: gateway, log, processor, chDB, API; the edge in
 * workerd) driven through the edge, first at full speed to measure its capacity for the mix (events
 * sent over the time until core has counted them all), then
 * at a fraction of it (80 %) for a bounded time, with a realistic mix:
 *   - batches of 50 (server key), beacons of 10 (public key, `text/plain`), pixels and click
 *     redirects with tokens signed by the demo token key;
 *   - 5 % of batches retried whole (their events come back as duplicates), 2 % of events from a
 *     known bot (counted, not billed), 10 % late (event time 20 minutes back).
 * It reports accepted vs counted (the accounting report: edge accepted = core accepted, exactly),
 * accept→visible p50/p99 (single-event probes while the load runs), RSS and heap of each process
 * over time, errors by code, and writes the series as an SVG plot to bench/results/.
 *
 *   node --import tsx bench/sustained-bench.ts
 *   SUSTAINED_SECONDS=3600 node --import tsx bench/sustained-bench.ts     # an hour
 *
 * Env: SUSTAINED_SECONDS (120), SUSTAINED_CAPACITY_SECONDS (15), SUSTAINED_LOAD (0.8),
 * SUSTAINED_CONCURRENCY (8), SUSTAINED_SAMPLE_MS (2000), SUSTAINED_PROXY_TIMEOUT_MS (the edge's
 * PROXY_TIMEOUT_MS, default wrangler.toml's: a short one makes the edge retry produces core's gateway
 * stored but acknowledged late, so the log holds copies of accepted envelopes and the books must
 * still balance, the copies shown as `logCopies`).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { mintToken } from '../schemas/src/token.js'
import { monotonicFactory } from 'ulid'
import { BENCH_API_LIMIT, startCore, startEdge } from '../test/e2e/system.js'

const ADMIN = 'admin_demo_dev'
const SERVER_KEY = 'pk_demo_publisher_dev'
const PUBLIC_KEY = 'pkpub_demo_publisher_dev'
const ADVERTISER_KEY = 'ak_demo_advertiser_dev'
const TOKEN_KEY_ID = 'demo'
const TOKEN_SECRET = 'demo-signing-secret-dev'
const PUBLISHER = 'pub_demo'
const CPM = 'cmp_demo_cpm'
const CPC = 'cmp_demo_cpc'
const BOT_UA = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36'

export interface SustainedOptions {
  seconds?: number
  capacitySeconds?: number
  load?: number
  concurrency?: number
  sampleMs?: number
}

interface Sample {
  t: number
  acceptedPerSecond: number
  rssMiB: Record<string, number>
  /**
   * The anonymous part of each RSS (RssAnon: heaps, malloc, the engines' caches), without the file
   * pages the process has mapped (the embedded log's and the state's LMDB files, which the kernel
   * reclaims under pressure): growth here is memory the process holds.
   */
  anonMiB: Record<string, number>
  coreHeapMiB?: number
  benchHeapMiB: number
  p99ms?: number
  /** Log records core's processor had not processed yet (all partitions of ad-events). */
  lagRecords?: number
  /** How long the accounting report took to answer, when one was asked in this sample (every ACCOUNTING_EVERY_MS). */
  accountingMs?: number
}

/** While the load runs, the accounting report is asked this often, its answer time kept in the samples. */
const ACCOUNTING_EVERY_MS = 60_000

const ulid = monotonicFactory()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

/** Every process below `root` (Linux /proc), with its command name, resident set size and its anonymous part. */
function processTree(root: number): { pid: number; name: string; rss: number; anon: number }[] {
  const stats = new Map<number, { ppid: number; name: string }>()
  for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const text = readFileSync(`/proc/${e}/stat`, 'utf8')
      const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'))
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
      stats.set(Number(e), { ppid: Number(f[1]), name })
    } catch {
      // gone meanwhile
    }
  }
  const out: { pid: number; name: string; rss: number; anon: number }[] = []
  const todo = [root]
  while (todo.length > 0) {
    const pid = todo.pop()!
    const st = stats.get(pid)
    if (!st) continue
    let rss = 0
    let anon = 0
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024
      anon = Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024
    } catch {
      // gone meanwhile
    }
    out.push({ pid, name: st.name, rss, anon })
    for (const [child, s] of stats) if (s.ppid === pid) todo.push(child)
  }
  return out
}

/** Core's JS heap in use and its processor's lag (log records not yet processed, all partitions), from its metrics. */
async function coreMetrics(internalUrl: string): Promise<{ heap?: number; lag?: number }> {
  try {
    const text = await (await fetch(`${internalUrl}/metrics`)).text()
    const m = /^nodejs_heap_size_used_bytes\s+(\S+)/m.exec(text)
    let lag: number | undefined
    for (const l of text.matchAll(/^adc_processor_lag_records\{[^}]*topic="ad-events"[^}]*\}\s+(\S+)/gm)) lag = (lag ?? 0) + Number(l[1])
    return { ...(m ? { heap: Number(m[1]) } : {}), ...(lag !== undefined ? { lag } : {}) }
  } catch {
    return {}
  }
}

/** A small multi-panel line plot as SVG (no dependencies). */
export function svgPlot(title: string, panels: { title: string; unit: string; series: { name: string; points: [number, number][] }[] }[]): string {
  const W = 900
  const H = 200
  const pad = { l: 60, r: 160, t: 28, b: 28 }
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b']
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')
  let y0 = 40
  let body = `<text x="10" y="22" font-size="16" font-family="sans-serif">${esc(title)}</text>`
  for (const p of panels) {
    const all = p.series.flatMap((s) => s.points)
    const xMax = Math.max(1, ...all.map((q) => q[0]))
    const yMax = Math.max(1e-9, ...all.map((q) => q[1])) * 1.1
    const x = (v: number) => pad.l + (v / xMax) * (W - pad.l - pad.r)
    const y = (v: number) => y0 + pad.t + (1 - v / yMax) * (H - pad.t - pad.b)
    body += `<text x="${pad.l}" y="${y0 + 16}" font-size="13" font-family="sans-serif">${esc(p.title)} (${esc(p.unit)})</text>`
    body += `<line x1="${pad.l}" y1="${y(0)}" x2="${W - pad.r}" y2="${y(0)}" stroke="#999"/><line x1="${pad.l}" y1="${y(0)}" x2="${pad.l}" y2="${y(yMax)}" stroke="#999"/>`
    for (const f of [0, 0.5, 1]) {
      body += `<text x="${pad.l - 6}" y="${y(yMax * f / 1.1) + 4}" font-size="10" text-anchor="end" font-family="sans-serif">${Math.round((yMax * f) / 1.1 * 10) / 10}</text>`
    }
    body += `<text x="${W - pad.r}" y="${y(0) + 16}" font-size="10" text-anchor="end" font-family="sans-serif">${Math.round(xMax)} s</text>`
    p.series.forEach((s, i) => {
      if (s.points.length === 0) return
      const c = colors[i % colors.length]
      body += `<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"/>`
      body += `<text x="${W - pad.r + 8}" y="${y0 + pad.t + 12 + i * 14}" font-size="11" fill="${c}" font-family="sans-serif">${esc(s.name)}</text>`
    })
    y0 += H
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y0 + 10}" viewBox="0 0 ${W} ${y0 + 10}"><rect width="100%" height="100%" fill="white"/>${body}</svg>\n`
}

export async function runSustainedBench(opts: SustainedOptions = {}) {
  const seconds = opts.seconds ?? Number(process.env.SUSTAINED_SECONDS ?? 120)
  const capacitySeconds = opts.capacitySeconds ?? Number(process.env.SUSTAINED_CAPACITY_SECONDS ?? 15)
  const loadFactor = opts.load ?? Number(process.env.SUSTAINED_LOAD ?? 0.8)
  const concurrency = opts.concurrency ?? Number(process.env.SUSTAINED_CONCURRENCY ?? 8)
  const sampleMs = opts.sampleMs ?? Number(process.env.SUSTAINED_SAMPLE_MS ?? 2000)

  const core = await startCore({ LOG_LEVEL: 'error', ...BENCH_API_LIMIT })
  const proxyTimeout = process.env.SUSTAINED_PROXY_TIMEOUT_MS
  const edge = await startEdge(core, proxyTimeout ? { PROXY_TIMEOUT_MS: proxyTimeout } : {})
  const errors: Record<string, number> = {}
  /** The first answer seen for each error code (what a plain status code was about). */
  const errorSamples: Record<string, string> = {}
  const rejectedByCode: Record<string, number> = {}
  const err = (code: string, sample?: string) => {
    errors[code] = (errors[code] ?? 0) + 1
    if (sample !== undefined && !(code in errorSamples)) errorSamples[code] = sample.slice(0, 300)
  }
  try {
    const admin = (method: string, path: string, body?: unknown) => fetch(`${core.url}${path}`, {
      method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}),
    })
    // The demo publisher's limit (500 events/s) would refuse the load: lift it for the bench.
    const patched = await admin('PATCH', `/v1/admin/publishers/${PUBLISHER}`, { rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } })
    if (!patched.ok) throw new Error(`raising the demo publisher's limit: ${patched.status} ${await patched.text()}`)
    const runId = Math.random().toString(36).slice(2, 8)
    const probeCampaign = `cmp_probe_${runId}`
    const created = await admin('POST', '/v1/admin/campaigns', { id: probeCampaign, advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 1_000_000 } })
    if (created.status !== 201) throw new Error(`probe campaign: ${created.status} ${await created.text()}`)
    await sleep(2500) // the edge pulls its config every second in this harness

    let seq = 0
    const event = (campaign: string, late = false, bot = false) => {
      const i = ++seq
      return {
        eventId: ulid(), ts: Date.now() - (late ? 20 * 60_000 : 0), adId: 'ad_1', campaignId: campaign, publisherId: PUBLISHER,
        requestId: `r_${runId}_${i}`, impressionId: `imp_${runId}_${i}`, channel: 'web',
        ua: bot ? BOT_UA : UA, ip: `81.${(i >> 8) & 255}.${i & 255}.9`,
      }
    }
    const mixEvent = () => event(CPM, Math.random() < 0.1, Math.random() < 0.02)

    let accepted = 0
    let duplicates = 0
    let requests = 0
    const sentBatches: unknown[][] = []
    const readJson = async (res: Response): Promise<Record<string, unknown> | undefined> => {
      const text = await res.text()
      try {
        return JSON.parse(text) as Record<string, unknown>
      } catch {
        if (res.status >= 300) err(`http_${res.status}`, text)
        return undefined
      }
    }
    const failed = (res: Response, body: Record<string, unknown> | undefined) => {
      const e = body?.error as { code?: string; message?: string } | undefined
      if (e?.code) err(e.code, e.message)
    }
    const countResults = (body: Record<string, unknown> | undefined) => {
      for (const r of (body?.results as { status: string; code?: string }[] | undefined) ?? []) {
        if (r.status === 'rejected' || r.status === 'failed') rejectedByCode[r.code ?? r.status] = (rejectedByCode[r.code ?? r.status] ?? 0) + 1
      }
    }
    type Kind = 'batch' | 'beacon' | 'pixel' | 'redirect'
    /** The mix by requests: 70 % batches of 50, 15 % beacons of 10, 8 % pixels, 7 % redirects. */
    const pick = (): Kind => {
      const r = Math.random()
      return r < 0.7 ? 'batch' : r < 0.85 ? 'beacon' : r < 0.93 ? 'pixel' : 'redirect'
    }
    const sizeOf = (k: Kind) => (k === 'batch' ? 50 : k === 'beacon' ? 10 : 1)
    /** One request of the mix; resolves to the events it carried. */
    const one = async (kind: Kind = pick()): Promise<number> => {
      requests++
      if (kind === 'batch') {
        const retry = sentBatches.length > 0 && Math.random() < 0.05
        const events = retry ? sentBatches[Math.floor(Math.random() * sentBatches.length)]! : Array.from({ length: 50 }, mixEvent)
        const res = await fetch(`${edge.url}/v1/events/impressions:batch`, {
          method: 'POST', headers: { authorization: `Bearer ${SERVER_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ events }),
        })
        const body = await readJson(res)
        if (res.status !== 202) failed(res, body)
        accepted += Number(body?.accepted ?? 0)
        duplicates += Number(body?.duplicate ?? 0)
        countResults(body)
        if (!retry && res.status === 202) {
          sentBatches.push(events)
          if (sentBatches.length > 200) sentBatches.shift()
        }
        return events.length
      }
      if (kind === 'beacon') {
        const events = Array.from({ length: 10 }, () => ({ type: 'impression', ...mixEvent(), viewable: true, viewMethod: 'mrc_50_1s' }))
        const res = await fetch(`${edge.url}/v1/beacon?k=${PUBLIC_KEY}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ events }) })
        const body = await readJson(res)
        if (res.status !== 202) failed(res, body)
        countResults(body)
        return events.length
      }
      const e = event(kind === 'pixel' ? CPM : CPC)
      const payload = { impressionId: e.impressionId, campaignId: e.campaignId, adId: e.adId, publisherId: PUBLISHER, requestId: e.requestId, exp: Math.floor(Date.now() / 1000) + 3600 }
      if (kind === 'pixel') {
        const t = await mintToken(payload, TOKEN_KEY_ID, TOKEN_SECRET)
        const res = await fetch(`${edge.url}/v1/pixel.gif?t=${t}`, { headers: { 'user-agent': UA } })
        await res.arrayBuffer()
        if (res.status !== 200) err(`pixel_${res.status}`)
        return 1
      }
      const t = await mintToken({ ...payload, url: 'https://advertiser.example/landing' }, TOKEN_KEY_ID, TOKEN_SECRET)
      const res = await fetch(`${edge.url}/c/${t}`, { redirect: 'manual', headers: { 'user-agent': UA } })
      await res.arrayBuffer()
      if (res.status !== 302) err(`redirect_${res.status}`)
      return 1
    }

    type Accounting = { balanced: boolean; publishers: { publisherId: string; edge: { received: number; accepted: number; rejected: number; duplicate: number }; core: { accepted: number; billed: number; keptByReason: Record<string, number>; logCopies?: number } }[] }
    // Every UTC day the run touches (a run across midnight books on two): their reports are summed.
    const firstDay = Date.parse(new Date().toISOString().slice(0, 10))
    const days = (): string[] => {
      const out: string[] = []
      for (let d = firstDay; d <= Date.now(); d += 86_400_000) out.push(new Date(d).toISOString().slice(0, 10))
      return out
    }
    /** Accounting reports of several days, summed per publisher; balanced when every day is. */
    const summed = (reports: Accounting[]): Accounting => {
      const pubs = new Map<string, Accounting['publishers'][number]>()
      for (const r of reports) {
        for (const p of r.publishers) {
          const q = pubs.get(p.publisherId)
          if (!q) {
            pubs.set(p.publisherId, { publisherId: p.publisherId, edge: { ...p.edge }, core: { ...p.core, keptByReason: { ...p.core.keptByReason } } })
            continue
          }
          for (const k of ['received', 'accepted', 'rejected', 'duplicate'] as const) q.edge[k] += p.edge[k]
          q.core.accepted += p.core.accepted
          q.core.billed += p.core.billed
          q.core.logCopies = (q.core.logCopies ?? 0) + (p.core.logCopies ?? 0)
          for (const [k, v] of Object.entries(p.core.keptByReason)) q.core.keptByReason[k] = (q.core.keptByReason[k] ?? 0) + v
        }
      }
      return { balanced: reports.every((r) => r.balanced), publishers: [...pubs.values()] }
    }
    const accountingTimes: number[] = []
    /** The accounting report, its answer time kept; a request that fails (a timeout) is counted as an error and asked again. */
    const accounting = async (until: number): Promise<Accounting> => {
      for (;;) {
        const t = performance.now()
        try {
          const report = summed(await Promise.all(days().map(async (day) => (await (await admin('GET', `/v1/reports/accounting?day=${day}`)).json()) as Accounting)))
          accountingTimes.push(performance.now() - t)
          return report
        } catch (e) {
          err(`accounting_${(e as { cause?: { code?: string } }).cause?.code ?? 'failed'}`, `after ${Math.round(performance.now() - t)} ms: ${(e as Error).message}`)
          if (Date.now() > until) throw e
        }
      }
    }
    /** Until core has counted everything the edge accepted (and at least `atLeast`); the last report on timeout. */
    const drained = async (atLeast: number, timeoutMs: number): Promise<Accounting> => {
      const until = Date.now() + timeoutMs
      for (;;) {
        const report = await accounting(until)
        const pub = report.publishers.find((p) => p.publisherId === PUBLISHER)
        if ((report.balanced && pub && pub.edge.accepted >= atLeast && pub.core.accepted === pub.edge.accepted) || Date.now() > until) return report
        await sleep(500)
      }
    }

    // 1. Capacity of the whole system: the mix at full speed through the edge, until the processor
    // has counted all of it (the edge alone accepts faster than the processor beside it counts).
    let sent = 0
    const c0 = performance.now()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() - c0 < capacitySeconds * 1000) {
        const n = await one().catch(() => { err('transport'); return 0 })
        sent += n
      }
    }))
    const edgeCapacity = sent / ((performance.now() - c0) / 1000)
    await drained(accepted, 300_000)
    const capacity = sent / ((performance.now() - c0) / 1000)
    const target = capacity * loadFactor

    // 2. Sustained: paced at `target` events/s, probes and samples alongside.
    const delays: number[] = []
    const samples: Sample[] = []
    let stop = false
    let loadSent = 0
    const acceptedAt0 = accepted
    const t0 = performance.now()
    // Twice the senders: pacing, not the senders' round trips, sets the rate.
    const paced = Promise.all(Array.from({ length: concurrency * 2 }, async () => {
      while (!stop) {
        // Wait until the events sent so far are due at the target rate.
        for (let wait = t0 + (loadSent / target) * 1000 - performance.now(); wait > 0 && !stop; wait = t0 + (loadSent / target) * 1000 - performance.now()) {
          await sleep(Math.min(200, wait))
        }
        if (stop) break
        // Counted before the request, so the pacing sees what is in flight.
        const kind = pick()
        loadSent += sizeOf(kind)
        await one(kind).catch(() => { err('transport'); return 0 })
      }
    }))
    const totals = async (campaign: string): Promise<number> => {
      const q = `campaignId=${campaign}&from=${new Date(Date.now() - 3600_000).toISOString()}&to=${new Date(Date.now() + 120_000).toISOString()}`
      const res = await fetch(`${core.url}/v1/metrics/realtime?${q}`, { headers: { authorization: `Bearer ${ADVERTISER_KEY}` } })
      return ((await res.json()) as { totals: { impressions: number } }).totals.impressions
    }
    const probing = (async () => {
      let i = 0
      while (!stop) {
        const res = await fetch(`${edge.url}/v1/events/impressions:batch`, {
          method: 'POST', headers: { authorization: `Bearer ${SERVER_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ events: [event(probeCampaign)] }),
        })
        await res.arrayBuffer()
        if (res.status !== 202) {
          err(`probe_${res.status}`)
          continue
        }
        const t = performance.now()
        const until = Date.now() + 60_000
        while ((await totals(probeCampaign)) < i + 1 && Date.now() < until) await sleep(20)
        delays.push(performance.now() - t)
        i++
        await sleep(500)
      }
    })()
    let lastAccepted = accepted
    let lastT = t0
    let lastDelays = 0
    let nextAccounting = t0 + ACCOUNTING_EVERY_MS
    while (performance.now() - t0 < seconds * 1000) {
      await sleep(sampleMs)
      const now = performance.now()
      // Per process, named by system (core, edge) and command (node, workerd, ...).
      const rssMiB: Record<string, number> = {}
      const procs = [...processTree(core.child.pid!).map((p) => ({ ...p, name: `core:${p.name}` })), ...(edge.pid ? processTree(edge.pid).map((p) => ({ ...p, name: `edge:${p.name}` })) : [])]
      const anonMiB: Record<string, number> = {}
      for (const p of procs) {
        if (p.rss === 0) continue
        rssMiB[p.name] = mib((rssMiB[p.name] ?? 0) * 2 ** 20 + p.rss)
        anonMiB[p.name] = mib((anonMiB[p.name] ?? 0) * 2 ** 20 + p.anon)
      }
      const { heap, lag } = await coreMetrics(core.internalUrl)
      const recent = delays.slice(lastDelays)
      lastDelays = delays.length
      // The finance report under load: how long it takes to answer as the day's table grows.
      let accountingMs: number | undefined
      if (now >= nextAccounting) {
        nextAccounting = now + ACCOUNTING_EVERY_MS
        const before = accountingTimes.length
        await accounting(Date.now() + 600_000).catch(() => undefined)
        if (accountingTimes.length > before) accountingMs = Math.round(accountingTimes.at(-1)!)
      }
      samples.push({
        t: Math.round((now - t0) / 100) / 10, acceptedPerSecond: Math.round((accepted - lastAccepted) / ((now - lastT) / 1000)), rssMiB, anonMiB,
        ...(heap !== undefined ? { coreHeapMiB: mib(heap) } : {}), benchHeapMiB: mib(process.memoryUsage().heapUsed),
        ...(recent.length > 0 ? { p99ms: Math.round(pct(recent, 99)) } : {}),
        ...(lag !== undefined ? { lagRecords: lag } : {}), ...(accountingMs !== undefined ? { accountingMs } : {}),
      })
      lastAccepted = accepted
      lastT = now
    }
    stop = true
    await Promise.all([paced, probing])
    const loadSeconds = (performance.now() - t0) / 1000

    // 3. The books: the edge's accepted against core's counted, for the demo publisher, exact.
    const drain0 = performance.now()
    const lagAtEnd = (await coreMetrics(core.internalUrl)).lag
    const drainCalls0 = accountingTimes.length
    const report = await drained(accepted, 900_000)
    const drainSeconds = Math.round((performance.now() - drain0) / 100) / 10
    const drainTimes = accountingTimes.slice(drainCalls0)
    const pub = report.publishers.find((p) => p.publisherId === PUBLISHER)
    const first = samples[0]
    const last = samples.at(-1)
    const growth = (pick: (s: Sample) => number | undefined) => {
      const a = first ? pick(first) : undefined
      const b = last ? pick(last) : undefined
      const events = accepted - acceptedAt0
      return a === undefined || b === undefined || events === 0 ? undefined : Math.round(((b - a) / events) * 1e6 * 10) / 10
    }
    const result = {
      seconds: Math.round(loadSeconds), edgeCapacityEventsPerSecond: Math.round(edgeCapacity), capacityEventsPerSecond: Math.round(capacity), load: loadFactor, targetEventsPerSecond: Math.round(target),
      achievedEventsPerSecond: Math.round(loadSent / loadSeconds), requests,
      batchAccepted: accepted, batchDuplicates: duplicates,
      accounting: pub ? {
        balanced: report.balanced, edgeReceived: pub.edge.received, edgeAccepted: pub.edge.accepted, edgeDuplicate: pub.edge.duplicate, edgeRejected: pub.edge.rejected,
        coreCounted: pub.core.accepted, billed: pub.core.billed, keptByReason: pub.core.keptByReason, logCopies: pub.core.logCopies ?? 0, exact: pub.core.accepted === pub.edge.accepted,
      } : { balanced: report.balanced, missing: PUBLISHER },
      acceptToVisibleMs: { p50: Math.round(pct(delays, 50)), p99: Math.round(pct(delays, 99)), probes: delays.length },
      // After the load: core's backlog then, how long until it had counted everything, and the report's answer times meanwhile.
      drain: { lagRecordsAtEnd: lagAtEnd, seconds: drainSeconds, reports: drainTimes.length, firstReportMs: drainTimes[0] !== undefined ? Math.round(drainTimes[0]) : undefined, slowestReportMs: drainTimes.length > 0 ? Math.round(Math.max(...drainTimes)) : undefined },
      accountingMsUnderLoad: samples.filter((x) => x.accountingMs !== undefined).map((x) => [x.t, x.accountingMs]),
      memory: {
        first: first ? { rssMiB: first.rssMiB, anonMiB: first.anonMiB, coreHeapMiB: first.coreHeapMiB } : undefined,
        last: last ? { rssMiB: last.rssMiB, anonMiB: last.anonMiB, coreHeapMiB: last.coreHeapMiB } : undefined,
        coreHeapGrowthMiBPerMillionEvents: growth((s) => s.coreHeapMiB),
        coreRssGrowthMiBPerMillionEvents: growth((s) => s.rssMiB['core:node']),
        workerdRssGrowthMiBPerMillionEvents: growth((s) => s.rssMiB['edge:workerd']),
        coreAnonGrowthMiBPerMillionEvents: growth((s) => s.anonMiB['core:node']),
        workerdAnonGrowthMiBPerMillionEvents: growth((s) => s.anonMiB['edge:workerd']),
      },
      errors, errorSamples, rejectedByCode, samples,
    }
    const names = [...new Set(samples.flatMap((s) => Object.keys(s.rssMiB)))]
    const svg = svgPlot(`sustained load: ${result.achievedEventsPerSecond} events/s (${Math.round(loadFactor * 100)} % of ${result.capacityEventsPerSecond}), ${result.seconds} s`, [
      { title: 'accepted by batch routes', unit: 'events/s', series: [{ name: 'accepted/s', points: samples.map((s) => [s.t, s.acceptedPerSecond]) }] },
      { title: 'accept → visible, p99 per sample', unit: 'ms', series: [{ name: 'p99', points: samples.filter((s) => s.p99ms !== undefined).map((s) => [s.t, s.p99ms!]) }] },
      { title: 'resident set size', unit: 'MiB', series: names.map((n) => ({ name: n, points: samples.map((s) => [s.t, s.rssMiB[n] ?? 0] as [number, number]) })) },
      { title: 'anonymous memory (RSS less mapped files)', unit: 'MiB', series: names.map((n) => ({ name: n, points: samples.map((s) => [s.t, s.anonMiB[n] ?? 0] as [number, number]) })) },
      { title: 'JS heap used', unit: 'MiB', series: [{ name: 'core', points: samples.filter((s) => s.coreHeapMiB !== undefined).map((s) => [s.t, s.coreHeapMiB!]) }, { name: 'load generator', points: samples.map((s) => [s.t, s.benchHeapMiB]) }] },
      { title: 'processor backlog', unit: 'log records', series: [{ name: 'lag', points: samples.filter((s) => s.lagRecords !== undefined).map((s) => [s.t, s.lagRecords!]) }] },
      { title: 'accounting report, time to answer', unit: 'ms', series: [{ name: 'report', points: samples.filter((s) => s.accountingMs !== undefined).map((s) => [s.t, s.accountingMs!]) }] },
    ])
    const dir = join(import.meta.dirname, 'results')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'sustained.svg'), svg)
    return { ...result, plot: 'bench/results/sustained.svg' }
  } finally {
    // The edge's own log (workerd's messages for any 5xx above), beside the plot; not committed.
    mkdirSync(join(import.meta.dirname, 'results'), { recursive: true })
    writeFileSync(join(import.meta.dirname, 'results', 'sustained-edge.log'), edge.output())
    await edge.stop()
    await core.stop()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runSustainedBench()
  console.log(JSON.stringify({ ...r, samples: `${r.samples.length} samples` }, null, 2))
  process.exit(0)
}
