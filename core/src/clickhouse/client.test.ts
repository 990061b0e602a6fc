import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createClickHouse, migrate, sqlString, type ClickHouseClient } from './client.js'

describe('createClickHouse on chDB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'adc-ch-client-'))
  let ch: ClickHouseClient
  beforeAll(async () => {
    ch = createClickHouse({ dataDir: dir })
    await migrate(ch, 'adc_client_test')
  })
  afterAll(async () => {
    await ch.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('creates every table of the DDL, and migrating twice is harmless', async () => {
    await migrate(ch, 'adc_client_test')
    const rows = await (await ch.query({ query: `SELECT name FROM system.tables WHERE database = 'adc_client_test' ORDER BY name`, format: 'JSONEachRow' })).json<{ name: string }>()
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['bad_rows', 'edge_stats_minute', 'events_raw', 'ivt_decisions', 'rollup_ivt_minute', 'rollup_minute']))
  })

  it('answers in UTC with 64-bit integers as JSON numbers', async () => {
    const [row] = await (await ch.query({ query: `SELECT toString(toDateTime(0)) AS t, toUInt64(9007199254740991) AS big, getSetting('async_insert') AS ai`, format: 'JSONEachRow' })).json<{ t: string; big: unknown; ai: unknown }>()
    expect(row!.t).toBe('1970-01-01 00:00:00')
    expect(row!.big).toBe(9007199254740991)
    expect(Number(row!.ai)).toBe(0)
  })

  it('drops a retried insert carrying the same token in its SQL, and a later insert without a token still lands', async () => {
    await ch.command({ query: `CREATE TABLE adc_client_test.tok (a String) ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100` })
    const insert = async (token: string | undefined, a: string) => {
      const settings = token ? ` SETTINGS insert_deduplication_token=${sqlString(token)}` : ''
      const r = await ch.exec({ query: `INSERT INTO adc_client_test.tok${settings} FORMAT JSONEachRow`, values: Readable.from([JSON.stringify({ a }) + '\n']) })
      r.stream.resume()
    }
    await insert('ad-events-0-0-9-tok', 'x')
    await insert('ad-events-0-0-9-tok', 'x')
    await insert(undefined, 'y')
    const rows = await (await ch.query({ query: 'SELECT a FROM adc_client_test.tok ORDER BY a', format: 'JSONEachRow' })).json<{ a: string }>()
    expect(rows).toEqual([{ a: 'x' }, { a: 'y' }])
  })

  it('quotes SQL strings', () => {
    expect(sqlString(`a'b\\c`)).toBe(`'a\\'b\\\\c'`)
  })
})
