import { chTime } from '@adc/schemas'
import type { ClickHouseClient } from '@clickhouse/client'
import { isAbsolute, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { sqlString } from '../clickhouse/client.js'
import { DAY_MS, dayStart } from '../billing/days.js'
import { localPath, type S3Options } from './io.js'
import { isS3Location, s3Arguments } from './parquet.js'
import { LAKE_COLUMNS } from './schema.js'

/**
 * The ClickHouse table function that reads the lake table at `location` (its catalog location):
 * `icebergLocal` for a local table (chDB reads only under its working directory), `icebergS3` on S3.
 */
export function lakeReader(location: string, s3?: S3Options): string {
  if (isS3Location(location)) {
    if (!s3) throw new RangeError('reading an s3:// lake needs S3 settings')
    return `icebergS3(${s3Arguments(`${location}/`, s3)})`
  }
  const rel = relative(process.cwd(), localPath(location))
  if (rel.startsWith('..') || isAbsolute(rel)) throw new RangeError(`lake table ${location} is outside the working directory ${process.cwd()} (chDB's user files path)`)
  return `icebergLocal(${sqlString(rel)})`
}

/** What restoreDayFromLake copied: rows of the day (and of the day before, which billing joins against). */
export interface RestoreResult { rows: number }

/**
 * Rebuilds `events_raw` in `database` for one UTC day from the lake (plus the day before: billing's
 * final join looks back a day for a click's impression). Run it into a fresh database (migrated
 * with `migrate()`), then run the billing job for the day against that database: the lake is the
 * replayable source of truth, ClickHouse a rebuildable view. Columns a file predates (schema
 * evolution) read as their ClickHouse default.
 */
export async function restoreDayFromLake(client: ClickHouseClient, opts: { reader: string; database: string; day: string; /** Also the day before. @default true */ lookBack?: boolean }): Promise<RestoreResult> {
  const start = dayStart(opts.day)
  const from = opts.lookBack === false ? start : start - DAY_MS
  const cols = LAKE_COLUMNS.map((c) => c.name)
  const select = LAKE_COLUMNS.map((c) => {
    const d = c.type === 'string' ? "''" : c.type === 'list<string>' ? 'CAST([] AS Array(String))' : c.type === 'timestamptz' ? "toDateTime64(0, 6, 'UTC')" : '0'
    return `ifNull(${c.name}, ${d}) AS ${c.name}`
  })
  await client.command({
    query: `INSERT INTO ${opts.database}.events_raw (${cols.join(', ')})
      SELECT ${select.join(', ')} FROM ${opts.reader}
      WHERE ts >= toDateTime64(${sqlString(chTime(from))}, 6, 'UTC') AND ts < toDateTime64(${sqlString(chTime(start + DAY_MS))}, 6, 'UTC')`,
  })
  const rs = await client.query({ query: `SELECT count() AS n FROM ${opts.database}.events_raw`, format: 'JSONEachRow' })
  const [r] = await rs.json<{ n: number | string }>()
  return { rows: Number(r?.n ?? 0) }
}

/** The table function reading the embedded lake under `dir` (the sink's `dir`, e.g. `<DATA_DIR>/iceberg`). */
export function localLakeReader(dir: string, table = 'adc.events_raw'): string {
  const [ns, name] = table.split('.')
  return lakeReader(pathToFileURL(resolve(dir, 'warehouse', `${ns}.db`, name!)).href)
}

/**
 * Rebuilds one day of `events_raw` in place: drops the day's partition (events_raw is partitioned by
 * `toYYYYMMDD(ts)`) and loads the day again from the lake. Run with the processor stopped.
 */
export async function replaceDayFromLake(client: ClickHouseClient, opts: { reader: string; database: string; day: string }): Promise<RestoreResult> {
  await client.command({ query: `ALTER TABLE ${opts.database}.events_raw DROP PARTITION ${Number(opts.day.replaceAll('-', ''))}` })
  return restoreDayFromLake(client, { ...opts, lookBack: false })
}
