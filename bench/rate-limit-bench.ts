/**
 * Rate-limit benchmark: what the global per-publisher limit adds to a request (one RPC to the
 * publisher's RateLimiter Durable Object), in workerd under `wrangler dev`.
 *
 *   node --import tsx bench/rate-limit-bench.ts
 *   RATE_LIMIT_BENCH_CALLS=5000 node --import tsx bench/rate-limit-bench.ts
 *
 * - `rpc`: a request making `calls` take() RPCs one after another inside the Worker, timed from
 *   outside against one making none: the added latency per request. Then the same from 16 loops
 *   at once against one object: one publisher's ceiling in calls/s (every request of a publisher
 *   goes through its one object). Median of `rounds`.
 * - `batchRoute`: single-event batch requests one after another from outside, for scale: the
 *   whole request the RPC is part of.
 * Bounded in count; starts its own REST proxy stand-in and `wrangler dev` on loopback.
 */
import { createHash } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { freePort, startWranglerDev } from '../edge/test/wrangler-dev.js'
import { fastProxy, ulid } from './edge-bench.js'

export interface RateLimitBenchResult {
  /** Per take() RPC: (time of a request making N RPCs − time of one making none) / N, median of rounds. */
  rpc: { calls: number; rounds: number; sequentialMsPerCall: number; concurrency: number; concurrentCallsPerSecond: number }
  batchRoute: { requests: number; p50Ms: number; p99Ms: number }
}

function percentile(sorted: number[], p: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 1000) / 1000
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export async function runRateLimitBench(opts: { calls?: number; rounds?: number; requests?: number } = {}): Promise<RateLimitBenchResult> {
  const calls = opts.calls ?? 2000
  const rounds = opts.rounds ?? 5
  const requests = opts.requests ?? 300
  const concurrency = 16
  const proxyPort = await freePort()
  const proxy = await fastProxy(proxyPort)
  const publisherKey = 'pk_bench'
  const syncKey = 'edge_sync_bench'
  const config = {
    version: 1,
    publishers: [{
      id: 'pub_bench', apiKeyHashes: [createHash('sha256').update(publisherKey).digest('hex')], signingKeys: {},
      rateLimit: { perSecond: 10_000_000, burst: 10_000_000 }, active: true,
    }],
  }
  const dev = await startWranglerDev({
    REST_PROXY_URL: `http://127.0.0.1:${proxyPort}`,
    CORE_URL: `http://127.0.0.1:${proxyPort}`,
    EDGE_SYNC_KEY: syncKey,
    EDGE_CONFIG_JSON: JSON.stringify(config),
  })
  try {
    /** Wall time of one bench request making `n` RPCs from `loops` loops. */
    const timed = async (n: number, loops: number) => {
      const t0 = performance.now()
      const res = await fetch(`${dev.url}/v1/internal/rate-limit-bench`, {
        method: 'POST', headers: { authorization: `Bearer ${syncKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ calls: n, concurrency: loops }),
      })
      const body = (await res.json()) as { allowed: number }
      if (!res.ok || body.allowed !== n) throw new Error(`rate-limit-bench answered ${res.status}: ${JSON.stringify(body)}`)
      return performance.now() - t0
    }
    await timed(200, 1) // warm-up: module load, object creation
    const sequential: number[] = []
    const concurrent: number[] = []
    for (let i = 0; i < rounds; i++) {
      const base = await timed(0, 1)
      sequential.push((await timed(calls, 1) - base) / calls)
      concurrent.push(calls / ((await timed(calls, concurrency) - base) / 1000))
    }

    const latencies: number[] = []
    for (let i = 0; i < requests + 20; i++) {
      const now = Date.now()
      const t0 = performance.now()
      const res = await fetch(`${dev.url}/v1/events/impressions:batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${publisherKey}`, 'cf-connecting-ip': '203.0.113.9', 'user-agent': 'rate-limit-bench' },
        body: JSON.stringify({ events: [{ eventId: ulid(), ts: now, adId: 'ad_1', campaignId: 'cmp_1', publisherId: 'pub_bench', requestId: 'req_1', impressionId: `imp_${ulid()}`, channel: 'web' }] }),
      })
      await res.arrayBuffer()
      if (res.status !== 202) throw new Error(`batch answered ${res.status}`)
      if (i >= 20) latencies.push(performance.now() - t0) // the first 20 warm up
    }
    latencies.sort((a, b) => a - b)
    return {
      rpc: {
        calls, rounds, sequentialMsPerCall: Math.round(median(sequential) * 1000) / 1000,
        concurrency, concurrentCallsPerSecond: Math.round(median(concurrent)),
      },
      batchRoute: { requests, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) },
    }
  } finally {
    await dev.stop()
    await new Promise<void>((r) => proxy.server.close(() => r()))
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runRateLimitBench({ calls: Number(process.env.RATE_LIMIT_BENCH_CALLS ?? 2000) }).then((r) => {
    console.log(JSON.stringify(r, null, 2))
  }).catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
