import { describe, expect, it } from 'vitest'
import { migrate } from './client.js'
import { useScratchEngine } from '../testing/scratch-engine.js'

const engine = useScratchEngine('adc-migrate-')
const q = async <T>(query: string): Promise<T[]> => (await engine.client.query({ query, format: 'JSONEachRow' })).json<T>()

/** Columns added after tables already held data: a migration must add them in place. */
const ADDED = {
  events_raw: ['viewable', 'view_method', 'no_consent', 'ua_hashed'],
  rollup_minute: ['measured_impressions', 'viewable_impressions'],
  billing_snapshots: ['measured_impressions', 'viewable_impressions'],
} as const

describe('migrate on tables that already exist', () => {
  it('adds the viewability columns to tables made before them, keeping their rows', async () => {
    const db = 'adc_old'
    await migrate(engine.client, db)
    // The tables as an earlier release left them: without the columns (nor the hourly rollup that
    // reads them), with a row each.
    await engine.client.command({ query: `DROP VIEW IF EXISTS ${db}.rollup_hour_mv` })
    await engine.client.command({ query: `DROP TABLE IF EXISTS ${db}.rollup_hour` })
    for (const [table, cols] of Object.entries(ADDED)) {
      await engine.client.command({ query: `ALTER TABLE ${db}.${table} ${cols.map((c) => `DROP COLUMN IF EXISTS ${c}`).join(', ')}` })
    }
    await engine.client.insert({ table: `${db}.events_raw`, values: [{ event_key: 'old1', event_type: 'impression', campaign_id: 'c', ts: '2026-11-01 00:00:00.000' }], format: 'JSONEachRow' })
    await engine.client.insert({ table: `${db}.billing_snapshots`, values: [{ day: '2026-11-01', version: 1, campaign_id: 'c', impressions: 7 }], format: 'JSONEachRow' })

    await migrate(engine.client, db)
    await migrate(engine.client, db) // and again: idempotent

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

describe('migrate onto a release without the hourly IVT and edge-stats rollups', () => {
  it('rolls up the minute rows already there once, then keeps the hourly tables fed', async () => {
    const db = 'adc_pre_hourly'
    await migrate(engine.client, db)
    for (const t of ['rollup_ivt_hour', 'edge_stats_hour']) {
      await engine.client.command({ query: `DROP VIEW IF EXISTS ${db}.${t}_mv` })
      await engine.client.command({ query: `DROP TABLE IF EXISTS ${db}.${t}` })
    }
    const ivt = (minute: string, events: number) => ({ minute, campaign_id: 'c', publisher_id: 'p', event_type: 'impression', reason: 'givt_known_bot', events })
    const edge = (minute: string, received: number) => ({ minute, publisher_id: 'p', received, accepted: received - 1, rejected: 1, duplicate: 0, rejected_by_reason: { clock_skew: 1 } })
    await engine.client.insert({ table: `${db}.rollup_ivt_minute`, values: [ivt('2026-11-01 10:05:00', 2), ivt('2026-11-01 10:55:00', 3)], format: 'JSONEachRow' })
    await engine.client.insert({ table: `${db}.edge_stats_minute`, values: [edge('2026-11-01 10:05:00', 4)], format: 'JSONEachRow' })

    await migrate(engine.client, db)
    await migrate(engine.client, db) // idempotent: no second backfill
    await engine.client.insert({ table: `${db}.rollup_ivt_minute`, values: [ivt('2026-11-01 11:01:00', 5)], format: 'JSONEachRow' })
    await engine.client.insert({ table: `${db}.edge_stats_minute`, values: [edge('2026-11-01 10:30:00', 6)], format: 'JSONEachRow' })

    const ivtHours = await q<{ hour: string; events: string }>(`SELECT hour, sum(events) AS events FROM ${db}.rollup_ivt_hour GROUP BY hour ORDER BY hour`)
    expect(ivtHours.map((r) => [r.hour, Number(r.events)])).toEqual([['2026-11-01 10:00:00', 5], ['2026-11-01 11:00:00', 5]])
    const [stats] = await q<{ received: string; accepted: string; by: Record<string, string> }>(
      `SELECT sum(received) AS received, sum(accepted) AS accepted, sumMap(rejected_by_reason) AS by FROM ${db}.edge_stats_hour`,
    )
    expect([Number(stats!.received), Number(stats!.accepted), Number(stats!.by.clock_skew)]).toEqual([10, 8, 2])
  })
})
