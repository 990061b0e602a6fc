import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import { SOLE_LEASE, type Lease } from '../billing/lease.js'
import type { TenantStore } from '../tenants/tenant-store.js'

/** The part of the edge's `GET /v1/internal/spool/:publisherId` answer (edge/src/ingest/spool.ts SpoolStats) read here. */
interface SpoolStats {
  depth: number
  dead: number
}

export interface SpoolWatchOptions {
  /** The edge's base URL (EDGE_URL). */
  edgeUrl: string
  /** Bearer key of the edge's operator routes (EDGE_SYNC_KEY, shared with core). */
  syncKey: string
  tenants: Pick<TenantStore, 'listPublishers'>
  registry: Registry
  logger: Logger
  /** One replica polls: the billing lease holder. @default always held */
  lease?: Lease
  /** @default 60_000 */
  intervalMs?: number
  /** Per request. @default 5_000 */
  timeoutMs?: number
}

/**
 * Exports each publisher's edge Spool (depth, dead rows) as gauges, polled from the edge's operator
 * route, so AdcSpoolDeadRows can fire from Prometheus without scraping the edge.
 */
export function createSpoolWatch(options: SpoolWatchOptions) {
  const { registry, logger } = options
  const lease = options.lease ?? SOLE_LEASE
  const registers = [registry]
  const gauge = (name: string, help: string) =>
    (registry.getSingleMetric(name) as Gauge<'publisher_id'> | undefined) ?? new Gauge({ name, help, labelNames: ['publisher_id'] as const, registers })
  const dead = gauge('adc_edge_spool_dead_rows', "Records in a publisher's edge Spool the REST proxy refused for good (kept, not counted)")
  const depth = gauge('adc_edge_spool_depth', "Records waiting in a publisher's edge Spool for the REST proxy")
  const failures = (registry.getSingleMetric('adc_edge_spool_poll_failures_total') as Counter | undefined) ??
    new Counter({ name: 'adc_edge_spool_poll_failures_total', help: 'Spool stats the edge did not answer (since start)', registers })
  let timer: NodeJS.Timeout | undefined

  async function pollOnce(): Promise<number> {
    if (!lease.held()) return 0
    let polled = 0
    for (const p of options.tenants.listPublishers()) {
      try {
        const res = await fetch(new URL(`/v1/internal/spool/${encodeURIComponent(p.id)}`, options.edgeUrl), {
          headers: { authorization: `Bearer ${options.syncKey}` },
          signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
        })
        if (!res.ok) throw new Error(`edge answered ${res.status}`)
        const stats = (await res.json()) as SpoolStats
        dead.set({ publisher_id: p.id }, Number(stats.dead) || 0)
        depth.set({ publisher_id: p.id }, Number(stats.depth) || 0)
        polled++
      } catch (err) {
        failures.inc()
        logger.warn({ err, publisherId: p.id }, 'edge spool stats unavailable')
      }
    }
    return polled
  }

  return {
    pollOnce,
    start(): void {
      timer = setInterval(() => void pollOnce(), options.intervalMs ?? 60_000)
      timer.unref()
    },
    stop(): void {
      if (timer) clearInterval(timer)
    },
  }
}
