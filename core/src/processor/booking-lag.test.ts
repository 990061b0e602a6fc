import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { classifyDay } from '../billing/final-join.js'
import { buildLines } from '../billing/snapshots.js'
import { migrate } from '../clickhouse/client.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { heldLog, type HeldLog } from '../testing/held-log.js'
import { testEnvelope, toRecord } from '../testing/events.js'
import { useProcessorEnv } from '../testing/processor-env.js'
import { openSharedTenantStore } from '../tenants/shared-tenant-store.js'
import { bookedWith, DEMO_DEFAULTS, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { createProcessor, type Processor } from './processor.js'

/**
 * Two core replicas over one log: the advertiser books a campaign through replica A, the edge
 * pulls A's config and accepts an event for it, and the processor runs on replica B, whose tenant
 * view has not applied the booking yet when the event is read (its consumer is held back, as
 * between two polls).
 */
const env = useProcessorEnv('booking-lag')
const logger = pino({ level: 'silent' })
let seq = 0
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined)
})

const q = async <T>(query: string): Promise<T[]> => (await env.client.query({ query, format: 'JSONEachRow' })).json<T>()

interface Fleet {
  a: TenantStore
  b: TenantStore
  /** B's log: hold it to keep B's tenant view from applying what A writes. */
  bLog: HeldLog
  db: string
  topic: string
}

async function fleet(): Promise<Fleet> {
  const n = seq++
  const tenantsTopic = `tenants-lag-${n}`
  const topic = `ad-events-lag-${n}`
  const db = `adc_lag_${n}`
  await migrate(env.client, db)
  await env.log.ensureTopic(topic, 1)
  const a = await openSharedTenantStore({ dir: join(env.root, `tenants-a-${n}`), log: env.log, logger, topic: tenantsTopic })
  cleanups.push(() => a.close())
  await seedDemoTenant(a, DEMO_DEFAULTS)
  const bLog = heldLog(env.log)
  cleanups.push(async () => bLog.release())
  const b = await openSharedTenantStore({ dir: join(env.root, `tenants-b-${n}`), log: bLog.log, logger, topic: tenantsTopic })
  cleanups.push(() => b.close())
  return { a, b, bLog, db, topic }
}

function processorOn(f: Fleet, name: string, registry = createMetricsRegistry({ defaultMetrics: false }), tenantSyncTimeoutMs?: number): Processor {
  const p = createProcessor({
    log: env.log, clickhouse: env.client, database: f.db, stateDir: join(env.root, 'state', name), groupId: `g-${name}`,
    logger, registry, retryDelayMs: 50, ...(tenantSyncTimeoutMs !== undefined ? { tenantSyncTimeoutMs } : {}),
    topics: { events: f.topic, edgeStats: `edge-stats-${name}` },
    // As core's main wires it, from this replica's tenant view.
    isBookedCampaign: (id, publisherId) => bookedWith(f.b.getCampaign(id), publisherId),
    tenants: f.b,
  })
  cleanups.push(() => p.stop())
  return p
}

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}

const applied = (p: Processor, topic: string): number => p.status().topics[topic]?.[0]?.applied ?? -1

async function syncCounts(registry: ReturnType<typeof createMetricsRegistry>): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric('adc_processor_tenant_sync_total')!.get()
  return Object.fromEntries(m.values.map((v) => [String(v.labels.outcome), v.value]))
}

/** The stream's rows and the T+1 bill's priced lines and verdicts for the day of `ts`. */
async function streamAndBill(f: Fleet, ts: number) {
  const raw = await q<{ campaign_id: string; billable: number; reason: string }>(`SELECT campaign_id, billable, toString(reason) reason FROM ${f.db}.events_raw ORDER BY campaign_id`)
  const [rollup] = await q<{ i: string }>(`SELECT sum(impressions) i FROM ${f.db}.rollup_minute`)
  const groups = await classifyDay(env.client, { database: f.db, day: new Date(ts).toISOString().slice(0, 10) })
  const lines = buildLines(groups, f.b)
  return {
    raw,
    streamImpressions: Number(rollup!.i),
    verdicts: groups.map((g) => [g.campaignId, g.verdict, g.events]),
    bill: lines.map((l) => [l.campaignId, l.impressions, l.spendMicros]),
  }
}

describe('an event for a campaign booked on another replica, read before this replica applied the booking', () => {
  it('is billed once the booking is applied, in the stream and in the T+1 bill alike', async () => {
    const f = await fleet()
    f.bLog.hold()
    await f.a.createCampaign({ id: 'cmp_new', advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 2_000_000 } })
    // The edge pulled A's config: the campaign is booked there, so the event is accepted (202).
    const edgeConfig = f.a.edgeConfig()
    expect(edgeConfig.campaignIds).toContain('cmp_new')
    expect(f.b.getCampaign('cmp_new')).toBeUndefined()
    const ts = Date.now() - 60_000
    await env.log.append(f.topic, [toRecord(testEnvelope({ type: 'impression', n: 71_000_001, impressionId: 'imp_lag_1', ts, campaignId: 'cmp_new', configVersion: edgeConfig.version }))])
    const p = processorOn(f, `lag-${f.db}`)
    await p.start()
    // B applies the booking a moment after the processor read the event (its next poll).
    setTimeout(() => f.bLog.release(), 500)
    await until(() => applied(p, f.topic) >= 0)
    await until(() => f.b.getCampaign('cmp_new') !== undefined)

    const raw = await q<{ campaign_id: string; billable: number; reason: string }>(`SELECT campaign_id, billable, toString(reason) reason FROM ${f.db}.events_raw`)
    expect(raw).toEqual([{ campaign_id: 'cmp_new', billable: 1, reason: '' }])
    const [rollup] = await q<{ i: string }>(`SELECT sum(impressions) i FROM ${f.db}.rollup_minute WHERE campaign_id = 'cmp_new'`)
    // The T+1 bill (final join, priced lines) agrees with the stream.
    const day = new Date(ts).toISOString().slice(0, 10)
    const lines = buildLines(await classifyDay(env.client, { database: f.db, day }), f.b)
    expect(lines.map((l) => [l.campaignId, l.impressions, l.spendMicros])).toEqual([['cmp_new', Number(rollup!.i), 2000]])
    expect(Number(rollup!.i)).toBe(1)
  })

  it('does not decide while the tenant view cannot catch up: the batch fails and is retried, nothing committed past it, then bills', async () => {
    const f = await fleet()
    f.bLog.hold()
    await f.a.createCampaign({ id: 'cmp_slow', advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 2_000_000 } })
    const ts = Date.now() - 60_000
    await env.log.append(f.topic, [toRecord(testEnvelope({ type: 'impression', n: 71_000_011, impressionId: 'imp_lag_11', ts, campaignId: 'cmp_slow', configVersion: f.a.configVersion() }))])
    const registry = createMetricsRegistry({ defaultMetrics: false })
    const p = processorOn(f, `slow-${f.db}`, registry, 200)
    await p.start()
    await until(() => p.health().stalled.length > 0)
    expect(p.health()).toMatchObject({ status: 'degraded', stalled: [{ topic: f.topic, partition: 0, reason: 'tenant_view_behind' }] })
    expect(applied(p, f.topic)).toBe(-1)
    expect(await q(`SELECT 1 FROM ${f.db}.events_raw`)).toEqual([])
    expect((await syncCounts(registry)).behind).toBeGreaterThanOrEqual(1)
    f.bLog.release()
    await until(() => applied(p, f.topic) >= 0)
    expect(p.health()).toEqual({ status: 'ok', stalled: [] })
    expect(await streamAndBill(f, ts)).toEqual({
      raw: [{ campaign_id: 'cmp_slow', billable: 1, reason: '' }],
      streamImpressions: 1,
      verdicts: [['cmp_slow', 'billable', 1]],
      bill: [['cmp_slow', 1, 2000]],
    })
  })

  it('catches up for an envelope without a version (an edge from before stamps) too', async () => {
    const f = await fleet()
    f.bLog.hold()
    await f.a.createCampaign({ id: 'cmp_old_edge', advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 2_000_000 } })
    const ts = Date.now() - 60_000
    await env.log.append(f.topic, [toRecord(testEnvelope({ type: 'impression', n: 71_000_021, impressionId: 'imp_lag_21', ts, campaignId: 'cmp_old_edge' }))])
    const p = processorOn(f, `old-${f.db}`)
    await p.start()
    setTimeout(() => f.bLog.release(), 300)
    await until(() => applied(p, f.topic) >= 0)
    expect((await streamAndBill(f, ts)).bill).toEqual([['cmp_old_edge', 1, 2000]])
  })

  it('keeps an event stamped with a version the caught-up view never reaches unknown_campaign, in the stream and the bill alike, without stalling', async () => {
    const f = await fleet()
    const ts = Date.now() - 60_000
    const stamp = f.a.configVersion() + 1000
    await env.log.append(f.topic, [
      toRecord(testEnvelope({ type: 'impression', n: 71_000_031, impressionId: 'imp_lag_31', ts, campaignId: 'cmp_never', configVersion: stamp })),
      toRecord(testEnvelope({ type: 'impression', n: 71_000_032, impressionId: 'imp_lag_32', ts, campaignId: 'cmp_never', configVersion: stamp })),
      toRecord(testEnvelope({ type: 'impression', n: 71_000_033, impressionId: 'imp_lag_33', ts, configVersion: stamp })),
    ])
    const registry = createMetricsRegistry({ defaultMetrics: false })
    const p = processorOn(f, `ahead-${f.db}`, registry)
    await p.start()
    await until(() => applied(p, f.topic) >= 2)
    expect(p.health().status).toBe('ok')
    // One catch-up for the batch; both events counted as stamped ahead of the view.
    expect(await syncCounts(registry)).toEqual({ caught_up: 1, version_ahead: 2 })
    const got = await streamAndBill(f, ts)
    expect(got.raw).toEqual([
      { campaign_id: 'cmp_demo_cpm', billable: 1, reason: '' },
      { campaign_id: 'cmp_never', billable: 0, reason: 'unknown_campaign' },
      { campaign_id: 'cmp_never', billable: 0, reason: 'unknown_campaign' },
    ])
    expect(got.verdicts).toEqual([['cmp_demo_cpm', 'billable', 1], ['cmp_never', 'unknown_campaign', 2]])
    expect(got.bill).toEqual([['cmp_demo_cpm', got.streamImpressions, 2000]])
  })
})
