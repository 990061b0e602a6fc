import { describe, expect, it } from 'vitest'
import { migrate } from './client.js'
import { useScratchEngine } from '../testing/scratch-engine.js'
import { DEFAULT_RETENTION } from './retention.js'

const engine = useScratchEngine('adc-retention-')
const q = async <T>(query: string): Promise<T[]> => (await engine.client.query({ query, format: 'JSONEachRow' })).json<T>()
const ttlOf = async (db: string, table: string) =>
  (await q<{ engine_full: string }>(`SELECT engine_full FROM system.tables WHERE database = '${db}' AND name = '${table}'`))[0]?.engine_full ?? ''

describe('retention (ClickHouse TTLs)', () => {
  it('sets no TTL unless a retention is given (tests on fixed dates stay)', async () => {
    await migrate(engine.client, 'adc_ret0')
    expect(await ttlOf('adc_ret0', 'events_raw')).not.toMatch(/TTL/)
  })

  it('puts the default TTL on every raw and rollup table, and none on billing snapshots', async () => {
    await migrate(engine.client, 'adc_ret', DEFAULT_RETENTION)
    expect(await ttlOf('adc_ret', 'events_raw')).toMatch(/TTL toDateTime\(ts\) \+ toIntervalDay\(90\)/)
    expect(await ttlOf('adc_ret', 'rollup_minute')).toMatch(/TTL minute \+ toIntervalDay\(35\)/)
    expect(await ttlOf('adc_ret', 'rollup_hour')).toMatch(new RegExp(`TTL hour \\+ toIntervalDay\\(${DEFAULT_RETENTION.hourlyRollupDays}\\)`))
    for (const hourly of ['rollup_ivt_hour', 'edge_stats_hour']) {
      expect(await ttlOf('adc_ret', hourly)).toMatch(new RegExp(`TTL hour \\+ toIntervalDay\\(${DEFAULT_RETENTION.hourlyRollupDays}\\)`))
    }
    expect(await ttlOf('adc_ret', 'bad_rows')).toMatch(/TTL toDateTime\(received_at\) \+ toIntervalDay\(90\)/)
    expect(await ttlOf('adc_ret', 'ivt_decisions')).toMatch(/TTL toDateTime\(ts\) \+ toIntervalDay\(90\)/)
    expect(await ttlOf('adc_ret', 'billing_snapshots')).not.toMatch(/TTL/)
  })

  it('changes the TTL of existing tables when the configuration changes, and removes it for 0 (keep forever)', async () => {
    await migrate(engine.client, 'adc_ret2', DEFAULT_RETENTION)
    await migrate(engine.client, 'adc_ret2', { ...DEFAULT_RETENTION, rawDays: 30, badRowsDays: 0 })
    expect(await ttlOf('adc_ret2', 'events_raw')).toMatch(/toIntervalDay\(30\)/)
    expect(await ttlOf('adc_ret2', 'bad_rows')).not.toMatch(/TTL/)
  })

  it('drops expired raw rows and keeps hourly totals past the minute rollups', async () => {
    const db = 'adc_ret3'
    await migrate(engine.client, db, DEFAULT_RETENTION)
    const old = new Date(Date.now() - 60 * 86_400_000).toISOString().slice(0, 19).replace('T', ' ')
    const ancient = new Date(Date.now() - 100 * 86_400_000).toISOString().slice(0, 19).replace('T', ' ')
    await engine.client.insert({ table: `${db}.events_raw`, values: [{ event_key: 'gone', campaign_id: 'c', ts: `${ancient}.000` }, { event_key: 'kept', campaign_id: 'c', ts: `${old}.000` }], format: 'JSONEachRow' })
    await engine.client.command({ query: `INSERT INTO ${db}.rollup_minute (minute, campaign_id, impressions) VALUES ('${old}', 'c', 5)` })
    await engine.client.command({ query: `OPTIMIZE TABLE ${db}.events_raw FINAL` })
    await engine.client.command({ query: `OPTIMIZE TABLE ${db}.rollup_minute FINAL` })
    expect((await q<{ event_key: string }>(`SELECT event_key FROM ${db}.events_raw`)).map((r) => r.event_key)).toEqual(['kept'])
    // The minute row is past 35 days and gone; its hour was rolled up and stays.
    expect(await q(`SELECT * FROM ${db}.rollup_minute`)).toEqual([])
    const hours = await q<{ i: string }>(`SELECT sum(impressions) AS i FROM ${db}.rollup_hour WHERE campaign_id = 'c'`)
    expect(Number(hours[0]!.i)).toBe(5)
  })
})
