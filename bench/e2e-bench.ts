/**
 * Whole embedded path: edge batch in (workerd via wrangler dev) → gateway → embedded log →
 * processor → chDB rollup → metrics API out. Reports events/s and the delay from the edge's 202
 * to the event being visible in the realtime API (p50, p99). Bounded in count and time.
 *
 *   node --import tsx bench/e2e-bench.ts            (BENCH_EVENTS=40000 BENCH_PROBES=40 by default)
 */
import { monotonicFactory } from 'ulid'
import { BENCH_API_LIMIT, startCore, startEdge } from '../test/e2e/system.js'

const ADMIN = 'admin_demo_dev'
const ulid = monotonicFactory()

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

async function post(url: string, key: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

export async function runE2eBench(opts: { events?: number; probes?: number; concurrency?: number } = {}) {
  const total = opts.events ?? Number(process.env.BENCH_EVENTS ?? 40_000)
  const probes = opts.probes ?? Number(process.env.BENCH_PROBES ?? 40)
  const concurrency = opts.concurrency ?? 4
  const core = await startCore({ LOG_LEVEL: 'error', ...BENCH_API_LIMIT })
  const edge = await startEdge(core)
  try {
    const runId = Math.random().toString(36).slice(2, 8)
    const adv = await (await post(`${core.url}/v1/admin/advertisers`, ADMIN, { id: `adv_bench_${runId}`, name: 'bench' })).json() as { apiKey: string }
    const pub = await (await post(`${core.url}/v1/admin/publishers`, ADMIN, { id: `pub_bench_${runId}`, name: 'bench', rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } })).json() as { apiKey: string }
    for (const id of ['load', 'probe']) {
      const res = await post(`${core.url}/v1/admin/campaigns`, ADMIN, { id: `cmp_${id}_${runId}`, advertiserId: `adv_bench_${runId}`, pricing: { model: 'cpm', priceMicros: 1_000_000 } })
      if (res.status !== 201) throw new Error(`campaign: ${res.status} ${await res.text()}`)
    }
    // the edge pulls tenant config on a short TTL in this harness
    await new Promise((r) => setTimeout(r, 1500))

    const event = (campaign: string, i: number) => ({
      eventId: ulid(), ts: Date.now(), adId: 'ad_1', campaignId: campaign, publisherId: `pub_bench_${runId}`,
      requestId: `r${i}`, impressionId: `i_${campaign}_${i}`, channel: 'web', device: 'desktop', geo: 'US',
      ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36', ip: `81.${(i >> 8) & 255}.${i & 255}.9`, // spread over /24s: one prefix would trip the burst rule (IVT)
    })
    const totals = async (campaign: string) => {
      const q = `campaignId=${campaign}&from=${new Date(Date.now() - 3600_000).toISOString()}&to=${new Date(Date.now() + 120_000).toISOString()}`
      const res = await fetch(`${core.url}/v1/metrics/realtime?${q}`, { headers: { authorization: `Bearer ${adv.apiKey}` } })
      return ((await res.json()) as { totals: { impressions: number } }).totals.impressions
    }

    // Throughput: batches of 500 from a few concurrent senders, until all are visible in the API.
    const load = `cmp_load_${runId}`
    const batches = Math.ceil(total / 500)
    let next = 0
    let accepted = 0
    const t0 = performance.now()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < batches) {
        const b = next++
        const events = Array.from({ length: 500 }, (_, j) => event(load, b * 500 + j))
        const res = await post(`${edge.url}/v1/events/impressions:batch`, pub.apiKey, { events })
        const body = await res.json() as { accepted: number }
        accepted += body.accepted ?? 0
      }
    }))
    const tAccepted = performance.now()
    const deadline = Date.now() + 120_000
    let visible = 0
    while ((visible = await totals(load)) < accepted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    const tVisible = performance.now()

    // Delay: one event at a time, from the edge's 202 to the API showing it.
    const probe = `cmp_probe_${runId}`
    const delays: number[] = []
    for (let i = 0; i < probes; i++) {
      const res = await post(`${edge.url}/v1/events/impressions:batch`, pub.apiKey, { events: [event(probe, i)] })
      if (res.status !== 202) throw new Error(`probe ${i}: ${res.status}`)
      const t = performance.now()
      const until = Date.now() + 30_000
      while ((await totals(probe)) < i + 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
      delays.push(performance.now() - t)
    }
    return {
      events: total,
      accepted,
      visible,
      edgeAcceptEventsPerSec: Math.round(accepted / ((tAccepted - t0) / 1000)),
      endToEndEventsPerSec: Math.round(visible / ((tVisible - t0) / 1000)),
      delayMs: { p50: Math.round(percentile(delays, 50)), p99: Math.round(percentile(delays, 99)), samples: delays.length },
    }
  } finally {
    await edge.stop()
    await core.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await runE2eBench(), null, 2))
}
