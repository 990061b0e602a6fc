import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClickHouse, migrate, type ClickHouseClient } from './client.js'

const dir = mkdtempSync(join(tmpdir(), 'adc-migrate-'))
let ch: ClickHouseClient
beforeAll(() => {
  ch = createClickHouse({ dataDir: dir })
})
afterAll(async () => {
  await ch.close()
  rmSync(dir, { recursive: true, force: true })
})
const q = async <T>(query: string): Promise<T[]> => (await ch.query({ query, format: 'JSONEachRow' })).json<T>()

/** Columns added after tables already held data: a migration must add them in place. */
const ADDED = {
  events_raw: ['viewable', 'view_method'],
  rollup_minute: ['measured_impressions', 'viewable_impressions'],
  billing_snapshots: ['measured_impressions', 'viewable_impressions'],
} as const

describe('migrate on tables that already exist', () => {
  it('adds the viewability columns to tables made before them, keeping their rows', async () => {
    const db = 'adc_old'
    await migrate(ch, db)
    // The tables as an earlier release left them: without the columns (nor the hourly rollup that
    // reads them), with a row each.
    await ch.command({ query: `DROP VIEW IF EXISTS ${db}.rollup_hour_mv` })
    await ch.command({ query: `DROP TABLE IF EXISTS ${db}.rollup_hour` })
    for (const [table, cols] of Object.entries(ADDED)) {
      await ch.command({ query: `ALTER TABLE ${db}.${table} ${cols.map((c) => `DROP COLUMN IF EXISTS ${c}`).join(', ')}` })
    }
    await ch.insert({ table: `${db}.events_raw`, values: [{ event_key: 'old1', event_type: 'impression', campaign_id: 'c', ts: '2026-11-01 00:00:00.000' }], format: 'JSONEachRow' })
    await ch.insert({ table: `${db}.billing_snapshots`, values: [{ day: '2026-11-01', version: 1, campaign_id: 'c', impressions: 7 }], format: 'JSONEachRow' })

    await migrate(ch, db)
    await migrate(ch, db) // and again: idempotent

    for (const [table, cols] of Object.entries(ADDED)) {
      const got = await q<{ name: string }>(`SELECT name FROM system.columns WHERE database = '${db}' AND table = '${table}' AND name IN (${cols.map((c) => `'${c}'`).join(',')}) ORDER BY name`)
      expect({ table, cols: got.map((g) => g.name) }).toEqual({ table, cols: [...cols].sort() })
    }
    const [old] = await q<{ viewable: number; view_method: string }>(`SELECT viewable, view_method FROM ${db}.events_raw WHERE event_key = 'old1'`)
    expect({ viewable: Number(old!.viewable), view_method: old!.view_method }).toEqual({ viewable: 0, view_method: '' })
    const [snap] = await q<{ impressions: number; measured_impressions: number; viewable_impressions: number }>(`SELECT impressions, measured_impressions, viewable_impressions FROM ${db}.billing_snapshots`)
    expect([snap!.impressions, snap!.measured_impressions, snap!.viewable_impressions].map(Number)).toEqual([7, 0, 0])
  })
})
