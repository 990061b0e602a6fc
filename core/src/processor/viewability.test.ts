import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { pino } from 'pino'
import type { EnvelopeInput } from '@adc/schemas'
import { migrate } from '../clickhouse/client.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { localLakeReader } from '../lake/restore.js'
import { createProcessor } from './processor.js'
import { useProcessorEnv } from '../testing/processor-env.js'
import { testEnvelope, toRecord, type TestEventInput } from '../testing/events.js'

const env = useProcessorEnv('viewability')

const q = async <T>(query: string): Promise<T[]> => (await env.client.query({ query, format: 'JSONEachRow' })).json<T>()
const T = Date.UTC(2026, 10, 23, 15, 0, 0)

function measured(i: TestEventInput, view: { viewable?: boolean; viewMethod?: string }): EnvelopeInput {
  const env = testEnvelope(i)
  return { ...env, event: { ...env.event, ...view } } as EnvelopeInput
}

describe('viewability through the processor', () => {
  it('stores viewable and the measurement method per impression and counts measured and viewable billable impressions', async () => {
    const db = 'adc_view'
    await migrate(env.client, db)
    await env.log.ensureTopic('ad-events', 4)
    const base = { type: 'impression' as const, campaignId: 'cmp_view', ts: T }
    const a = measured({ ...base, n: 70_000_001, impressionId: 'imp_va' }, { viewable: true, viewMethod: 'mrc_50_1s' })
    const b = measured({ ...base, n: 70_000_002, impressionId: 'imp_vb' }, { viewable: false })
    const c = measured({ ...base, n: 70_000_003, impressionId: 'imp_vc' }, {})
    const d = measured({ ...base, n: 70_000_004, impressionId: 'imp_vd', channel: 'app' }, { viewable: true, viewMethod: 'client' })
    const bot = measured({ ...base, n: 70_000_005, impressionId: 'imp_ve', ua: 'curl/8.5.0' }, { viewable: true, viewMethod: 'mrc_50_1s' })
    const click = testEnvelope({ type: 'click', n: 70_000_006, impressionId: 'imp_va', ts: T + 5_000, campaignId: 'cmp_view' })
    // d is delivered twice (an edge retry): the copy is a duplicate, never a second viewable impression.
    const records = [a, b, c, d, d, bot, click].map(toRecord)
    await env.log.append('ad-events', records)
    const p = createProcessor({
      log: env.log, clickhouse: env.client, database: db, stateDir: join(env.root, 'state'), groupId: 'g-view',
      logger: pino({ level: 'silent' }), registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords: 500,
      icebergDir: join(env.lakeDir, db),
    })
    await p.start()
    const deadline = Date.now() + 30_000
    for (;;) {
      const applied = Object.values(p.status().topics['ad-events'] ?? {}).reduce((s, x) => s + x.applied + 1, 0)
      if (applied >= records.length || Date.now() > deadline) break
      await new Promise((r) => setTimeout(r, 50))
    }
    await p.stop()

    const rows = await q<{ impression_id: string; event_type: string; reason: string; viewable: number; view_method: string }>(
      `SELECT impression_id, event_type, reason, viewable, view_method FROM ${db}.events_raw WHERE sign = 1 ORDER BY impression_id, event_type, reason`)
    expect(rows.map((r) => [r.impression_id, r.event_type, r.reason, Number(r.viewable), r.view_method])).toEqual([
      ['imp_va', 'click', '', 0, ''],
      ['imp_va', 'impression', '', 1, 'mrc_50_1s'],
      ['imp_vb', 'impression', '', 0, 'client'],
      ['imp_vc', 'impression', '', 0, ''],
      ['imp_vd', 'impression', '', 1, 'client'],
      ['imp_vd', 'impression', 'duplicate_delivery', 1, 'client'],
      ['imp_ve', 'impression', 'givt_known_bot', 1, 'mrc_50_1s'],
    ])
    const [r] = await q<Record<string, string>>(`SELECT sum(impressions) i, sum(measured_impressions) m, sum(viewable_impressions) v FROM ${db}.rollup_minute WHERE campaign_id = 'cmp_view'`)
    expect({ i: Number(r!.i), m: Number(r!.m), v: Number(r!.v) }).toEqual({ i: 4, m: 3, v: 2 })
    const lake = await q<{ impression_id: string; viewable: number; view_method: string }>(
      `SELECT impression_id, viewable, view_method FROM ${localLakeReader(join(env.lakeDir, db))} WHERE event_type = 'impression' AND reason = '' ORDER BY impression_id`)
    expect(lake.map((x) => [x.impression_id, Number(x.viewable), x.view_method])).toEqual([
      ['imp_va', 1, 'mrc_50_1s'], ['imp_vb', 0, 'client'], ['imp_vc', 0, ''], ['imp_vd', 1, 'client'],
    ])
  })
})
