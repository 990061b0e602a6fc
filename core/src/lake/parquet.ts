import type { ClickHouseClient } from '@clickhouse/client'
import { sqlString } from '../clickhouse/client.js'
import type { DataFile } from './manifest.js'
import { long, TRUNCATE, truncatedLower } from './metrics.js'
import { localPath, type S3Options } from './io.js'
import type { IcebergField } from './schema.js'

/**
 * Data files read back and written by the engine (chDB or a ClickHouse server), never by a Parquet
 * codec of our own: compaction and erasure select rows from existing files and write new ones with
 * the sink's settings.
 */

/** Whether an Iceberg location is on S3 (`s3://`, or `s3a://` as Spark writes it). */
export const isS3Location = (location: string): boolean => /^s3a?:\/\//.test(location)

/**
 * An S3 location as the engine's s3() and icebergS3() table functions take it, path style at the
 * configured endpoint, with the credentials: `'<url>', '<key id>', '<secret>'`.
 */
export function s3Arguments(location: string, s3: S3Options): string {
  const url = `${s3.endpoint.replace(/\/$/, '')}/${location.replace(/^s3a?:\/\//, '')}`
  return `${sqlString(url)}, ${sqlString(s3.accessKeyId)}, ${sqlString(s3.secretAccessKey)}`
}

/** The table function reading one Parquet data file at its Iceberg location (`file://` or `s3://`). */
export function parquetSource(location: string, s3?: S3Options): string {
  if (isS3Location(location)) {
    if (!s3) throw new RangeError('reading an s3:// data file needs S3 settings')
    return `s3(${s3Arguments(location, s3)}, 'Parquet')`
  }
  return `file(${sqlString(localPath(location))}, 'Parquet')`
}

/** Data file paths look like Hive partitions (`ts_hour=…/`): their directory is not a column. */
const NO_HIVE = 'use_hive_partitioning = 0'

export interface FileColumn { name: string; type: string }

/** A data file's columns as the engine reads them (names as written, engine types). */
export async function parquetColumns(client: ClickHouseClient, source: string): Promise<FileColumn[]> {
  const rs = await client.query({ query: `DESCRIBE ${source} SETTINGS ${NO_HIVE}`, format: 'JSONEachRow' })
  return (await rs.json<{ name: string; type: string }>()).map((c) => ({ name: c.name, type: c.type }))
}

const ident = (name: string) => `\`${name.replace(/`/g, '``')}\``
const canBeNull = (type: string) => !/^(Array|Map|Tuple|Nullable|LowCardinality\(Nullable)/.test(type)

/**
 * One SELECT over several data files with one column set: every column any of them has, in the
 * table's field order; a column a file lacks (written before the column was added) reads as null
 * (an empty list for list columns, which cannot be null in the engine).
 */
export function unionSelect(inputs: { source: string; columns: FileColumn[] }[], fieldOrder: string[], where?: string): { select: string; columns: FileColumn[] } {
  const byName = new Map<string, { type: string; missing: boolean }>()
  for (const input of inputs) for (const c of input.columns) if (!byName.has(c.name)) byName.set(c.name, { type: c.type, missing: false })
  for (const [name, c] of byName) c.missing = inputs.some((i) => !i.columns.some((x) => x.name === name))
  const order = (n: string) => {
    const i = fieldOrder.indexOf(n)
    return i < 0 ? fieldOrder.length : i
  }
  const names = [...byName.keys()].sort((a, b) => order(a) - order(b))
  const columns = names.map((name) => {
    const c = byName.get(name)!
    return { name, type: c.missing && canBeNull(c.type) ? `Nullable(${c.type})` : c.type }
  })
  const parts = inputs.map((input) => {
    const have = new Set(input.columns.map((c) => c.name))
    const cols = columns.map((c) => (have.has(c.name) ? `CAST(${ident(c.name)} AS ${c.type}) AS ${ident(c.name)}` : `CAST(${c.type.startsWith('Nullable') ? 'NULL' : 'defaultValueOfTypeName(' + sqlString(c.type) + ')'} AS ${c.type}) AS ${ident(c.name)}`))
    return `SELECT ${cols.join(', ')} FROM ${input.source}${where ? ` WHERE ${where}` : ''}`
  })
  const sort = ['ts', 'event_key'].filter((n) => byName.has(n)).map(ident)
  return { select: `SELECT * FROM (${parts.join(' UNION ALL ')})${sort.length ? ` ORDER BY ${sort.join(', ')}` : ''}`, columns }
}

/**
 * How the lake's Parquet data files are written: zstd (the table's `write.parquet.compression-codec`),
 * strings as strings, and no bloom filters, as Iceberg writers default
 * (`write.parquet.bloom-filter-enabled.column.*` off): ClickHouse writes one per column by default,
 * about 0.5 µs of CPU per row of the raw table (measured on chDB, 20k rows: 69 vs 79 ms).
 */
export const PARQUET_WRITE_SETTINGS = "output_format_parquet_compression_method = 'zstd', output_format_parquet_string_as_string = 1, output_format_parquet_write_bloom_filter = 0"

/** Runs a SELECT into Parquet with the sink's settings (PARQUET_WRITE_SETTINGS). */
export async function encodeParquet(client: ClickHouseClient, select: string, params?: Record<string, unknown>): Promise<Buffer> {
  const rs = await client.exec({
    query: `${select} SETTINGS ${NO_HIVE}, ${PARQUET_WRITE_SETTINGS} FORMAT Parquet`,
    ...(params ? { query_params: params } : {}),
  })
  const chunks: Buffer[] = []
  for await (const chunk of rs.stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Rows of a data file matching `where`. */
export async function countWhere(client: ClickHouseClient, source: string, where: string, params: Record<string, unknown>): Promise<number> {
  const rs = await client.query({ query: `SELECT count() AS n FROM ${source} WHERE ${where} SETTINGS ${NO_HIVE}`, query_params: params, format: 'JSONEachRow' })
  return Number((await rs.json<{ n: string | number }>())[0]?.n ?? 0)
}

/**
 * Column metrics of a written data file (as the sink records them): value and null counts, and
 * bounds for strings (truncate(16)), ints, longs and timestamps (µs), computed by the engine.
 */
export async function fileMetrics(client: ClickHouseClient, source: string, columns: FileColumn[], fields: IcebergField[]): Promise<{ rows: number; metrics: NonNullable<DataFile['metrics']> }> {
  const ids = new Map(fields.map((f) => [f.name, f]))
  const known = columns.map((c, i) => ({ c, i, field: ids.get(c.name) })).filter((x) => x.field && typeof x.field.type === 'string')
  const exprs = ['count() AS n', ...known.flatMap(({ c, i, field }) => {
    const col = ident(c.name)
    const out = [`countIf(isNull(${col})) AS n${i}`]
    const t = field!.type
    if (t === 'string') out.push(`hex(min(${col})) AS lo${i}`, `hex(max(${col})) AS hi${i}`, `countIf(isNotNull(${col})) AS v${i}`)
    if (t === 'int' || t === 'long') out.push(`toString(min(${col})) AS lo${i}`, `toString(max(${col})) AS hi${i}`, `countIf(isNotNull(${col})) AS v${i}`)
    if (t === 'timestamptz' || t === 'timestamp') out.push(`toString(toUnixTimestamp64Micro(min(${col}))) AS lo${i}`, `toString(toUnixTimestamp64Micro(max(${col}))) AS hi${i}`, `countIf(isNotNull(${col})) AS v${i}`)
    return out
  })]
  const rs = await client.query({ query: `SELECT ${exprs.join(', ')} FROM ${source} SETTINGS ${NO_HIVE}`, format: 'JSONEachRow' })
  const r = (await rs.json<Record<string, string | number | null>>())[0]!
  const rows = Number(r.n)
  const metrics: NonNullable<DataFile['metrics']> = { valueCounts: new Map(), nullCounts: new Map(), lower: new Map(), upper: new Map() }
  for (const { i, field } of known) {
    const id = field!.id
    metrics.valueCounts.set(id, rows)
    metrics.nullCounts.set(id, Number(r[`n${i}`] ?? 0))
    if (Number(r[`v${i}`] ?? 0) === 0 || r[`lo${i}`] == null) continue
    const t = field!.type
    if (t === 'string') {
      const lo = Buffer.from(String(r[`lo${i}`]), 'hex')
      const hi = Buffer.from(String(r[`hi${i}`]), 'hex')
      metrics.lower.set(id, truncatedLower(lo.toString()))
      if (hi.length <= TRUNCATE) metrics.upper.set(id, hi)
    } else if (t === 'int') {
      const [a, b] = [Buffer.alloc(4), Buffer.alloc(4)]
      a.writeInt32LE(Number(r[`lo${i}`]))
      b.writeInt32LE(Number(r[`hi${i}`]))
      metrics.lower.set(id, a)
      metrics.upper.set(id, b)
    } else {
      metrics.lower.set(id, long(BigInt(String(r[`lo${i}`]))))
      metrics.upper.set(id, long(BigInt(String(r[`hi${i}`]))))
    }
  }
  return { rows, metrics }
}
