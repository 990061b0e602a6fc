import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { createClickHouseSink } from './clickhouse-sink.js'
import { createIcebergSink } from './iceberg-sink.js'
import { batchOf, runSinkContract } from './sink.contract.js'

const dir = mkdtempSync(join(tmpdir(), 'adc-sink-'))
// chDB reads and writes Iceberg files only under the working directory.
const lakeDir = join('.cache', `test-lake-${process.pid}-${Date.now()}`)
let ch: ClickHouseClient
let n = 0

beforeAll(async () => {
  ch = createClickHouse({ dataDir: dir })
})
afterAll(async () => {
  await ch.close()
  rmSync(dir, { recursive: true, force: true })
  rmSync(lakeDir, { recursive: true, force: true })
})

const q = async <T>(query: string): Promise<T[]> => (await ch.query({ query, format: 'JSONEachRow' })).json<T>()

runSinkContract({
  name: 'clickhouse (chDB)',
  async newSink() {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    return {
      sink: createClickHouseSink({ client: ch, database: db }),
      probe: {
        async eventTotals(partition) {
          const [r] = await q<{ events: number; billable: number }>(`SELECT sum(sign) AS events, sumIf(sign, billable = 1) AS billable FROM ${db}.events_raw WHERE log_partition = ${partition}`)
          return { events: Number(r!.events), billable: Number(r!.billable) }
        },
        async rollupTotals(campaignId) {
          const [r] = await q<{ impressions: number; clicks: number; orphan_clicks: number; uniques: number }>(`SELECT sum(impressions) AS impressions, sum(clicks) AS clicks, sum(orphan_clicks) AS orphan_clicks, uniqMerge(uniques) AS uniques FROM ${db}.rollup_minute WHERE campaign_id = '${campaignId}'`)
          return { impressions: Number(r!.impressions), clicks: Number(r!.clicks), orphan_clicks: Number(r!.orphan_clicks), uniques: Number(r!.uniques) }
        },
      },
    }
  },
})

runSinkContract({
  name: 'iceberg (chDB IcebergLocal)',
  async newSink() {
    const db = `adc_lake_${n++}`
    await migrate(ch, db)
    const path = join(lakeDir, db)
    return {
      sink: await createIcebergSink({ client: ch, database: db, dir: path }),
      probe: {
        async eventTotals(partition) {
          const [r] = await q<{ events: number; billable: number }>(`SELECT sum(sign) AS events, sumIf(sign, billable = 1) AS billable FROM icebergLocal('${path}') WHERE log_partition = ${partition}`)
          return { events: Number(r!.events), billable: Number(r!.billable) }
        },
      },
    }
  },
})

describe('clickhouse sink without dedup tokens (negative control)', () => {
  it('counts a batch written twice twice', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db, dedupTokens: false })
    await sink.write(batchOf('neg', 0, 0, 9), { recovering: false })
    await sink.write(batchOf('neg', 0, 0, 9), { recovering: true })
    const [r] = await q<{ i: number }>(`SELECT sum(impressions) AS i FROM ${db}.rollup_minute`)
    expect(Number(r!.i)).toBe(20)
  })
})

describe('iceberg raw table', () => {
  it('is partitioned by hour and readable back with icebergLocal()', async () => {
    const db = `adc_lake_${n++}`
    await migrate(ch, db)
    const path = join(lakeDir, db)
    const sink = await createIcebergSink({ client: ch, database: db, dir: path })
    const b = batchOf('lake', 3, 0, 3599 * 2, 'cmp_lake') // offsets are seconds: two hours of events
    await sink.write(b, { recovering: false })
    const rows = await q<{ h: number; n: number }>(`SELECT toStartOfHour(ts) AS h, count() AS n FROM icebergLocal('${path}') GROUP BY h ORDER BY h`)
    expect(rows.map((r) => Number(r.n))).toEqual([3600, 3599])
    const { readdirSync } = await import('node:fs')
    const dataDirs = readdirSync(join(path, 'data'))
    expect(dataDirs.length).toBeGreaterThanOrEqual(2)
  })

  it('refuses a directory outside the working directory at start', async () => {
    await expect(createIcebergSink({ client: ch, database: 'default', dir: join(tmpdir(), 'elsewhere') })).rejects.toThrow(/inside the working directory/)
  })
})

describe('events_raw as TabSeparated', () => {
  it('round-trips agents and placements with tabs, newlines, backslashes and quotes byte for byte', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db })
    const b = batchOf('tsv', 0, 0, 0)
    const ua = "Mozilla/5.0 (X11)\tweird\\agent\n'quoted' \"double\" é"
    b.events[0] = { ...b.events[0]!, ua, placement: 'a\\tb', ivt_reasons: ['givt_known_bot', 'sivt_burst'] }
    await sink.write(b, { recovering: false })
    const [row] = await q<{ ua: string; placement: string; ivt_reasons: string[] }>(`SELECT ua, placement, ivt_reasons FROM ${db}.events_raw`)
    expect(row).toEqual({ ua, placement: 'a\\tb', ivt_reasons: ['givt_known_bot', 'sivt_burst'] })
  })
})
