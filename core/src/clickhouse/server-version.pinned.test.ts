import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseDocument } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { batchOf, eventRow } from '../testing/sink.contract.js'
import { createClickHouseSink } from '../sinks/clickhouse-sink.js'
import { createClickHouse, migrate, type ClickHouseClient } from './client.js'
import { SINK_TABLES, probeTable } from './ddl.js'

/**
 * Runs in the `core-clickhouse-pinned` project (vitest.config.ts), whose setup serves chDB of the
 * ClickHouse version docker-compose.yml pins over the HTTP interface (core/src/clickhouse/pinned/).
 * The same project runs the server sink contract and the API and billing suites on it, so every
 * statement core sends (DDL, each insert with its settings, the read side) meets that version.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const compose = parseDocument(readFileSync(join(root, 'docker-compose.yml'), 'utf8')).toJS() as { services: Record<string, { image?: string }> }
const serverTag = compose.services.clickhouse!.image!.split(':')[1]!
const serverLine = serverTag.split('.').slice(0, 2).join('.')

let ch: ClickHouseClient
beforeAll(() => {
  ch = createClickHouse({ url: process.env.ADC_TEST_CLICKHOUSE_URL!, dataDir: '' })
})
afterAll(async () => {
  await ch.close()
})
const q = async <T>(query: string): Promise<T[]> => (await ch.query({ query, format: 'JSONEachRow' })).json<T>()

describe('core on the ClickHouse version the compose stack pins', () => {
  it('runs on the release line of the pinned server image, installed from the pinned requirement', async () => {
    const requirement = /^chdb-core==(\d+\.\d+)\.\d+$/m.exec(readFileSync(join(root, 'scripts/clickhouse/requirements.txt'), 'utf8'))
    expect(requirement?.[1], 'scripts/clickhouse/requirements.txt pins chDB of the server line').toBe(serverLine)
    const [row] = await q<{ v: string }>('SELECT version() AS v')
    expect(row!.v.startsWith(`${serverLine}.`), `engine ${row!.v} vs clickhouse-server:${serverTag}`).toBe(true)
  })

  it('refuses a setting the engine does not know, in the URL or in the SQL text (what would fail on the server fails here)', async () => {
    // For instance allow_delta_lake_writes exists in the embedded chDB (ClickHouse 26.7) but not in 26.3.
    await expect(ch.command({ query: 'SELECT 1', clickhouse_settings: { allow_delta_lake_writes: 1 } as never })).rejects.toMatchObject({ type: 'UNKNOWN_SETTING' })
    await expect(ch.command({ query: 'SELECT 1 SETTINGS allow_delta_lake_writes = 1' })).rejects.toMatchObject({ type: 'UNKNOWN_SETTING' })
    await expect(ch.command({ query: 'SELECT 1; SELECT 2' })).rejects.toThrow(/Multi-statements/)
  })

  it('creates every table of ddl.ts, and migrating again changes nothing', async () => {
    await migrate(ch, 'adc_ddl')
    const tables = async () => (await q<{ name: string }>("SELECT name FROM system.tables WHERE database = 'adc_ddl' ORDER BY name")).map((t) => t.name)
    const first = await tables()
    // The processor's tables, each with its Null-engine probe twin, and the billing snapshots.
    // Plus the hourly rollup (and its view) kept past the minute rollup's retention, and the audit of privacy requests.
    const expected = ['billing_snapshots', 'edge_stats_hour', 'edge_stats_hour_mv', 'privacy_requests', 'rollup_hour', 'rollup_hour_mv', 'rollup_ivt_hour', 'rollup_ivt_hour_mv', ...SINK_TABLES, ...SINK_TABLES.map(probeTable)].sort()
    expect(first).toEqual(expected)
    await migrate(ch, 'adc_ddl')
    expect(await tables()).toEqual(first)
  })

  it('takes every sink insert with its dedup settings, and drops each table\'s replay of a batch', async () => {
    const db = 'adc_sink_all'
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db })
    const full = () => {
      const b = batchOf('pinned', 3, 0, 9)
      const t = Date.UTC(2026, 10, 23, 10, 0, 0)
      b.events.push(eventRow(3, 9, { reason: 'givt_known_bot', billable: 0, ivt_score: 1, ivt_reasons: ['givt_known_bot'], viewable: 1, view_method: 'mrc_50_1s' }))
      b.rollupIvt.push({ minute: t / 1000, campaign_id: 'cmp_contract', publisher_id: 'pub1', event_type: 'impression', reason: 'givt_known_bot', events: 1 })
      b.ivtDecisions.push({ event_key: 'k9', event_type: 'impression', campaign_id: 'cmp_contract', publisher_id: 'pub1', ts: t, score: 1, reasons: ['givt_known_bot'], model_version: 'm1', quarantined: 1, decided_at: t + 5 })
      b.badRows.push({ received_at: t, log_topic: 'pinned', log_partition: 3, log_offset: 4, reason: 'invalid_event', step: 'decode', details: "it's \\ odd\ttabbed", payload: '{"x":1}', processor_artifact: 'core', processor_version: '0.1.0' })
      b.edgeStats.push({ minute: t / 1000, publisher_id: 'pub1', received: 12, accepted: 10, rejected: 1, duplicate: 1, rejected_by_reason: { invalid_event: 1 } })
      return b
    }
    await sink.write(full(), { recovering: false })
    await sink.write(full(), { recovering: true })
    const count = async (table: string) => Number((await q<{ n: string }>(`SELECT count() AS n FROM ${db}.${table}`))[0]!.n)
    expect(await count('events_raw')).toBe(11)
    expect(await count('rollup_ivt_minute')).toBe(1)
    expect(await count('ivt_decisions')).toBe(1)
    expect(await count('bad_rows')).toBe(1)
    expect(await count('edge_stats_minute')).toBe(1)
    const [rollup] = await q<{ i: string; u: string }>(`SELECT sum(impressions) AS i, uniqMerge(uniques) AS u FROM ${db}.rollup_minute`)
    expect(Number(rollup!.i)).toBe(10)
    expect(Number(rollup!.u)).toBe(7)
    const [bad] = await q<{ details: string }>(`SELECT details FROM ${db}.bad_rows`)
    expect(bad!.details).toBe("it's \\ odd\ttabbed")
    const [stats] = await q<{ r: Record<string, number> }>(`SELECT sumMap(rejected_by_reason) AS r FROM ${db}.edge_stats_minute`)
    expect(stats!.r).toEqual({ invalid_event: 1 })
  })
})
