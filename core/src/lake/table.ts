import { chTime } from '@adc/schemas'
import type { ClickHouseClient } from '@clickhouse/client'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { insertWithBody, sqlString } from '../clickhouse/client.js'
import { EVENT_COLUMN_TYPES, EVENT_FILE_STRUCTURE, isOnChdb, refuseFor } from '../sinks/clickhouse-sink.js'
import type { EventRow, SinkBatch } from '../sinks/sink.js'
import { readAvroFile } from './avro.js'
import { isS3Location, PARQUET_WRITE_SETTINGS, s3Arguments } from './parquet.js'
import type { Catalog, LoadedTable, TableIdent } from './catalog.js'
import type { FileIO, S3Options } from './io.js'
import { buildManifest, buildManifestList, mergeManifests, normaliseManifestFile, OWN_MANIFEST, type DataFile, type ManifestFile } from './manifest.js'
import { CommitConflictError, currentSchema, currentSnapshotId, defaultSpec, newSnapshotId, sameId, type Id, type Snapshot, type TableMetadata, type TableRequirement, type TableUpdate } from './metadata.js'
import { columnMetrics, hasBounds, metricsOf, utf8Compare, type Bounds } from './metrics.js'
import { addFields, clickhouseType, hourOf, LAKE_COLUMNS, nameMapping, type IcebergSchema, type LakeColumn } from './schema.js'

/** Snapshot summary keys that record which log range a commit holds (how a replay finds it). */
export const SUMMARY = { topic: 'adc.log-topic', partition: 'adc.log-partition', minOffset: 'adc.log-min-offset', maxOffset: 'adc.log-max-offset' } as const

/**
 * Table property holding the highest log offset committed per topic and partition, set in the same
 * commit as the snapshot: a replay is recognised even after its snapshot expired (a partition's
 * ranges are committed in offset order).
 */
export const watermarkKey = (topic: string, partition: number) => `adc.log-committed.${topic}.${partition}`

/** Table properties set on create (Iceberg's standard names; change them with any engine). */
export const DEFAULT_PROPERTIES: Record<string, string> = {
  'write.format.default': 'parquet',
  'write.parquet.compression-codec': 'zstd',
  // One snapshot per processor batch: merge small manifests and expire old snapshots at commit, or
  // the manifest list and the metadata file would grow with every batch.
  'commit.manifest-merge.enabled': 'true',
  'commit.manifest.min-count-to-merge': '100',
  'commit.manifest.target-size-bytes': String(8 * 1024 * 1024),
  'history.expire.max-snapshot-age-ms': String(24 * 3_600_000),
  'history.expire.min-snapshots-to-keep': '100',
  // Each commit writes a metadata file: keep the last 100, delete older ones.
  'write.metadata.delete-after-commit.enabled': 'true',
  'write.metadata.previous-versions-max': '100',
}

export interface LakeTableOptions {
  /** chDB (or a ClickHouse server): writes the Parquet data files. */
  client: ClickHouseClient
  catalog: Catalog
  io: FileIO
  ident: TableIdent
  /** Table location used when the table is created (`file:///…/adc.db/events_raw`, `s3://warehouse/adc/events_raw`). */
  location: string
  /** Columns written; new ones are added to the table schema as optional columns. @default LAKE_COLUMNS */
  columns?: readonly LakeColumn[]
  /** Commit attempts on conflicts with other writers. @default 10 */
  maxAttempts?: number
  /** Table properties on create, over DEFAULT_PROPERTIES. */
  properties?: Record<string, string>
  /** S3 settings for chDB to read `s3://` data files back (compaction, erasure). */
  s3?: S3Options
}

export interface AppendResult {
  /** `committed`: a new snapshot; `already`: a snapshot with an overlapping log range exists (a replay). */
  status: 'committed' | 'already' | 'empty'
  snapshotId?: Id
}

const pad = (n: number) => String(n).padStart(2, '0')
/** Iceberg's human-readable hour partition value (`2026-11-23-10`), used in data file paths. */
export const hourName = (h: number) => {
  const d = new Date(h * 3_600_000)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}-${pad(d.getUTCHours())}`
}

type Range = Pick<SinkBatch, 'topic' | 'partition' | 'minOffset' | 'maxOffset'>

/** The snapshot (if any) in `metadata` that committed a log range overlapping this one. */
export function committedSnapshot(metadata: TableMetadata, range: Range): Snapshot | undefined {
  return (metadata.snapshots ?? []).find((s) => {
    const m = s.summary
    return m[SUMMARY.topic] === range.topic && Number(m[SUMMARY.partition]) === range.partition &&
      Number(m[SUMMARY.minOffset]) <= range.maxOffset && Number(m[SUMMARY.maxOffset]) >= range.minOffset
  })
}

/** Whether the range was committed: by a snapshot still in the metadata, or below the partition's watermark. */
export function alreadyCommitted(metadata: TableMetadata, range: Range): { snapshotId?: Id } | undefined {
  const snap = committedSnapshot(metadata, range)
  if (snap) return { snapshotId: snap['snapshot-id'] }
  const mark = metadata.properties[watermarkKey(range.topic, range.partition)]
  return mark !== undefined && Number(mark) >= range.minOffset ? {} : undefined
}

const prop = (m: TableMetadata, key: string): number => Number(m.properties[key] ?? DEFAULT_PROPERTIES[key])

/**
 * Snapshots past `history.expire.max-snapshot-age-ms`, beyond the newest `min-snapshots-to-keep`
 * (counting the `adding` snapshots of the commit) and never a referenced one.
 */
export function expiredSnapshots(m: TableMetadata, now: number, adding = 0): Id[] {
  const keep = Math.max(0, prop(m, 'history.expire.min-snapshots-to-keep') - adding)
  const cutoff = now - prop(m, 'history.expire.max-snapshot-age-ms')
  // The commit moves `main` to the added snapshot: its current head may expire like any other.
  const refs = new Set(Object.entries(m.refs ?? {}).filter(([name]) => !(adding > 0 && name === 'main')).map(([, r]) => String(r['snapshot-id'])))
  const byAge = [...(m.snapshots ?? [])].sort((a, b) => b['timestamp-ms'] - a['timestamp-ms'])
  return byAge.slice(keep).filter((s) => s['timestamp-ms'] < cutoff && !refs.has(String(s['snapshot-id']))).map((s) => s['snapshot-id'])
}

/**
 * Whether the lake encodes its data files from a batch's events_raw RowBinary bytes (`eventsRowBinary`)
 * rather than from its row objects, when every lake column is an events_raw column: on chDB (which
 * reads the bytes from a local scratch file), and on a ClickHouse server writing a table on S3
 * (`serverOnS3`: it reads them as the request body).
 */
export function lakeReadsRowBinary(client: ClickHouseClient, columns: readonly LakeColumn[] = LAKE_COLUMNS, serverOnS3 = false): boolean {
  const names = new Set<string>(EVENT_COLUMN_TYPES.map(([name]) => name))
  return (isOnChdb(client) || serverOnS3) && columns.every((c) => names.has(c.name))
}

/**
 * The raw-event Iceberg table: Parquet data files written by chDB, Iceberg v2 metadata (Avro
 * manifests and manifest lists with field ids, `hour(ts)` partitioning, absolute locations) written
 * here, and one atomic catalog commit per append whose summary records the log range.
 */
export function createLakeTable(options: LakeTableOptions) {
  const { client, catalog, io, ident } = options
  const columns = options.columns ?? LAKE_COLUMNS
  const maxAttempts = options.maxAttempts ?? 10
  let table: LoadedTable | undefined

  /** Loads the table, creating it or adding missing columns (schema evolution) as needed. */
  async function open(): Promise<LoadedTable> {
    let t = await catalog.load(ident)
    if (!t) {
      const { fields, lastColumnId } = addFields(columns, [], 0)
      const schema: IcebergSchema = { type: 'struct', 'schema-id': 0, fields }
      const ts = fields.find((f) => f.name === 'ts')!
      t = await catalog.create(ident, {
        name: ident.name,
        location: options.location,
        schema,
        lastColumnId,
        spec: { 'spec-id': 0, fields: [{ 'source-id': ts.id, 'field-id': 1000, name: 'ts_hour', transform: 'hour' }] },
        properties: { ...DEFAULT_PROPERTIES, ...options.properties, 'schema.name-mapping.default': JSON.stringify(nameMapping(fields)) },
      })
      // A REST catalog assigns its own field ids: the name mapping must carry those.
      const mapping = JSON.stringify(nameMapping(currentSchema(t.metadata).fields))
      if (t.metadata.properties['schema.name-mapping.default'] !== mapping) {
        t = await catalog.commit(ident, t, [], [{ action: 'set-properties', updates: { 'schema.name-mapping.default': mapping } }])
      }
    }
    for (let attempt = 1; ; attempt++) {
      const schema = currentSchema(t.metadata)
      const { fields, lastColumnId } = addFields(columns, schema.fields, t.metadata['last-column-id'])
      if (fields.length === schema.fields.length) break
      const next: IcebergSchema = { type: 'struct', 'schema-id': Math.max(...t.metadata.schemas.map((s) => s['schema-id'])) + 1, fields }
      try {
        t = await catalog.commit(ident, t, [{ type: 'assert-current-schema-id', 'current-schema-id': schema['schema-id'] }], [
          { action: 'add-schema', schema: next, 'last-column-id': lastColumnId },
          { action: 'set-current-schema', 'schema-id': -1 },
          { action: 'set-properties', updates: { 'schema.name-mapping.default': JSON.stringify(nameMapping(fields)) } },
        ])
      } catch (err) {
        if (!(err instanceof CommitConflictError) || attempt >= maxAttempts) throw err
        t = (await catalog.load(ident))!
      }
    }
    // Data files are cut per hour(ts): a spec changed by another engine to anything else is refused
    // at start rather than written with wrong partition values.
    const spec = defaultSpec(t.metadata)
    const ts = currentSchema(t.metadata).fields.find((f) => f.name === 'ts')
    if (spec.fields.length !== 1 || spec.fields[0]!.transform !== 'hour' || spec.fields[0]!['source-id'] !== ts?.id || spec.fields[0]!.name !== 'ts_hour') {
      throw new RangeError(`lake table ${ident.namespace.join('.')}.${ident.name}: partition spec ${JSON.stringify(spec.fields)} is not [hour(ts) AS ts_hour]`)
    }
    table = t
    return t
  }

  /** The rows as the engine reads them for a data file (inline through format(): chDB has no input()). */
  function selectRows(rows: EventRow[]): string {
    const structure = columns.map((c) => `${c.name} ${clickhouseType(c.type)}`).join(', ')
    let data = ''
    for (const r of rows) {
      const o: Record<string, unknown> = {}
      for (const c of columns) {
        const v = c.value(r)
        o[c.name] = c.type === 'timestamptz' ? chTime(v as number) : v
      }
      data += JSON.stringify(o) + '\n'
    }
    return `SELECT * FROM format(JSONEachRow, ${sqlString(structure)}, ${sqlString(data)})`
  }

  // The batch's events_raw RowBinary bytes (built once for ClickHouse) are what chDB encodes the
  // Parquet from when it can read a local file: no JSON text, no SQL escaping, no row objects. Each
  // lake column is cast to the type the lake writes (the same Parquet schema as from JSONEachRow);
  // the hours, counts and column bounds come from one query over the same bytes.
  const fromRowBinary = lakeReadsRowBinary(client, columns)
  const serverWritesS3 = !isOnChdb(client) && options.s3 !== undefined && lakeReadsRowBinary(client, columns, true)
  /** Whether this table's data files are written by a ClickHouse server straight to S3 (writeDataFilesOnServer). */
  const onServerS3 = (t: LoadedTable): boolean => serverWritesS3 && isS3Location(t.metadata.location)
  const castColumns = columns.map((c) => `CAST(${c.name}, ${sqlString(clickhouseType(c.type))}) AS ${c.name}`).join(', ')
  const bounded = columns.filter(hasBounds)
  const boundOf = (c: LakeColumn) => (c.type === 'timestamptz' ? `toUnixTimestamp64Milli(${c.name})` : c.type === 'string' ? c.name : `toInt64(${c.name})`)
  const statsColumns = bounded.map((c, i) => `min(${boundOf(c)}) AS lo${i}, max(${boundOf(c)}) AS hi${i}`).join(', ')
  let scratch: string | undefined
  let seq = 0

  /** Runs `use` with the bytes in a scratch file (its path); deleted after. */
  async function withScratch<T>(bytes: Buffer, use: (file: string) => Promise<T>): Promise<T> {
    scratch ??= mkdtempSync(join(tmpdir(), 'adc-chdb-lake-'))
    const file = join(scratch, `${process.pid}-${++seq}.bin`)
    await writeFile(file, bytes)
    try {
      return await use(file)
    } finally {
      await unlink(file).catch(() => undefined)
    }
  }

  /** The events_raw RowBinary scratch file as a table. */
  const rowBinaryTable = (file: string) => `file(${sqlString(file)}, RowBinary, ${sqlString(EVENT_FILE_STRUCTURE)})`

  interface HourStats { hour: number; count: number; bounds: Map<string, Bounds> }

  /** Per hour of the RowBinary file: its row count and each bounded column's min and max (byte order for strings). */
  async function statsOf(from: string): Promise<HourStats[]> {
    const rs = await client.query({
      query: `SELECT intDiv(toUnixTimestamp64Milli(ts), 3600000) AS hour, count() AS n${statsColumns ? `, ${statsColumns}` : ''} FROM ${from} GROUP BY hour ORDER BY hour`,
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
    })
    const out = await rs.json<Record<string, string | number>>()
    return out.map((r) => {
      const bounds = new Map<string, Bounds>()
      bounded.forEach((c, i) => {
        const [lo, hi] = [r[`lo${i}`]!, r[`hi${i}`]!]
        bounds.set(c.name, c.type === 'string' ? [String(lo), String(hi)] : c.type === 'long' ? [BigInt(lo), BigInt(hi)] : [Number(lo), Number(hi)])
      })
      return { hour: Number(r.hour), count: Number(r.n), bounds }
    })
  }

  /**
   * Row count and each bounded column's bounds of a Parquet file chDB wrote, from its
   * footer's statistics (min and max per row group; strings in byte order, times in µs). A column
   * without statistics has no bounds.
   */
  async function footerStats(file: string): Promise<{ count: number; bounds: Map<string, Bounds> }> {
    const rs = await client.query({ query: `SELECT num_rows, row_groups FROM file(${sqlString(file)}, ParquetMetadata)`, format: 'JSONEachRow' })
    const [meta] = await rs.json<FooterRow>()
    if (!meta) throw new Error('chDB read no metadata from the Parquet file it wrote')
    return footerBounds(meta)
  }

  type FooterRow = { num_rows: number | string; row_groups: { columns: Array<{ name: string; statistics?: { min: string | null; max: string | null } | null }> }[] }

  /** A Parquet footer's (ParquetMetadata row's) row count and each bounded column's bounds. */
  function footerBounds(meta: FooterRow): { count: number; bounds: Map<string, Bounds> } {
    const range = new Map<string, [string, string] | null>()
    for (const group of meta.row_groups) {
      for (const col of group.columns) {
        const min = col.statistics?.min
        const max = col.statistics?.max
        const seen = range.get(col.name)
        if (seen === null) continue
        if (min == null || max == null) range.set(col.name, null)
        else if (!seen) range.set(col.name, [min, max])
        else {
          const c = columns.find((x) => x.name === col.name)
          const less = (a: string, b: string) => (c?.type === 'string' ? utf8Compare(a, b) < 0 : BigInt(a) < BigInt(b))
          range.set(col.name, [less(min, seen[0]) ? min : seen[0], less(seen[1], max) ? max : seen[1]])
        }
      }
    }
    const bounds = new Map<string, Bounds>()
    for (const c of bounded) {
      const r = range.get(c.name)
      if (!r) continue
      // Timestamps come in µs: metricsOf takes ms (they are whole ms, written from DateTime64(3)).
      bounds.set(c.name, c.type === 'string' ? r : c.type === 'long' ? [BigInt(r[0]), BigInt(r[1])] : c.type === 'timestamptz' ? [Number(BigInt(r[0]) / 1000n), Number(BigInt(r[1]) / 1000n)] : [Number(r[0]), Number(r[1])])
    }
    return { count: Number(meta.num_rows), bounds }
  }

  async function encode(select: string): Promise<Buffer> {
    const rs = await client.exec({ query: `${select} ORDER BY ts, event_key SETTINGS ${PARQUET_WRITE_SETTINGS} FORMAT Parquet` })
    const chunks: Buffer[] = []
    for await (const chunk of rs.stream) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  }

  /**
   * On a ClickHouse server, with the table on S3: the server reads the batch's events_raw RowBinary
   * as the request body (`input()`), writes one Parquet file per hour straight to the table's data
   * location (`s3()`, with this writer's S3 settings), and reads their footers back; nothing of the
   * rows is built or sent as text, and no Parquet passes through this process (measured against the
   * JSONEachRow path in the README, "The lake on a ClickHouse server").
   */
  async function writeDataFilesOnServer(t: LoadedTable, rowBinary: Buffer, tsRange: [number, number] | undefined, s3: S3Options): Promise<DataFile[]> {
    const fields = currentSchema(t.metadata).fields
    const scheme = /^(s3a?):\/\//.exec(t.metadata.location)![1]!
    const s3fn = (location: string, format: string) => `s3(${s3Arguments(location, s3)}, ${sqlString(format)})`
    const data = `${t.metadata.location.replace(/\/$/, '')}/data`
    const name = randomUUID()
    await insertWithBody(client, `INSERT INTO FUNCTION ${s3fn(`${data}/ts_hour={_partition_id}/${name}.parquet`, 'Parquet')}
        PARTITION BY formatDateTime(ts, '%Y-%m-%d-%H', 'UTC')
        SELECT ${castColumns} FROM input(${sqlString(EVENT_FILE_STRUCTURE)}) ORDER BY ts, event_key
        SETTINGS ${PARQUET_WRITE_SETTINGS} FORMAT RowBinary`, rowBinary)
    // The files' hours: one known hour (most batches) is read by its key; otherwise the listing is
    // narrowed to the hours' common prefix, never the whole table (a key the glob names but the
    // server did not write would fail the read: hours without rows have no file).
    const [lo, hi] = tsRange ? [hourName(hourOf(tsRange[0])), hourName(hourOf(tsRange[1]))] : ['', '']
    let common = 0
    while (common < lo.length && lo[common] === hi[common]) common++
    const hours = tsRange && lo === hi ? lo : `${lo.slice(0, common)}*`
    const written = s3fn(`${data}/ts_hour=${hours}/${name}.parquet`, 'ParquetMetadata')
    const rs = await client.query({ query: `SELECT _path AS path, _size AS size, num_rows, row_groups FROM ${written} SETTINGS use_hive_partitioning = 0`, format: 'JSONEachRow' })
    const footers = (await rs.json<FooterRow & { path: string; size: number | string }>()).sort((a, b) => a.path.localeCompare(b.path))
    let queried: HourStats[] | undefined
    const files: DataFile[] = []
    for (const f of footers) {
      const m = /ts_hour=(\d{4})-(\d{2})-(\d{2})-(\d{2})\//.exec(f.path)
      if (!m) throw new Error(`the server wrote an unexpected data file ${f.path}`)
      const hour = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4])) / 3_600_000
      const footer = footerBounds(f)
      if (footer.count === 0) continue
      // As on chDB: a column left without statistics (a very long value) gets its bounds from a query.
      const bounds = footer.bounds.size === bounded.length ? footer.bounds : (queried ??= await statsOf(s3fn(`${data}/ts_hour=${hours}/${name}.parquet`, 'Parquet'))).find((h) => h.hour === hour)?.bounds
      files.push({ path: `${scheme}://${f.path}`, recordCount: footer.count, sizeBytes: Number(f.size), partition: { ts_hour: hour }, metrics: metricsOf(footer.count, columns, fields, (c) => bounds?.get(c.name)) })
    }
    return files
  }

  const dataPath = (t: LoadedTable, hour: number) => `${t.metadata.location.replace(/\/$/, '')}/data/ts_hour=${hourName(hour)}/${randomUUID()}.parquet`

  /** One Parquet file per hour of the batch's events, written by chDB and stored at the table's data location. */
  async function writeDataFiles(t: LoadedTable, batch: Pick<SinkBatch, 'events' | 'eventsRowBinary'>): Promise<DataFile[]> {
    const fields = currentSchema(t.metadata).fields
    const files: DataFile[] = []
    const rowBinary = batch.eventsRowBinary
    if (onServerS3(t) && rowBinary) {
      // A value the engine could not store is refused as it would refuse it (content), before any file is written.
      refuseFor(rowBinary.refusal)
      return rowBinary.bytes.length > 0 ? writeDataFilesOnServer(t, rowBinary.bytes, rowBinary.tsRange, options.s3!) : []
    }
    if (fromRowBinary && rowBinary && !rowBinary.refusal) {
      return withScratch(rowBinary.bytes, async (file) => {
        const from = rowBinaryTable(file)
        // One pass over the bytes, one Parquet file per hour of the batch's events (PARTITION BY
        // writes each hour's sorted rows to its own file), each file's count and bounds read from
        // its footer's statistics. A batch spread over many hours (late events) reads the bytes
        // once, not once per hour.
        const dir = join(scratch!, `${process.pid}-${++seq}.hours`)
        await mkdir(dir)
        try {
          // Most batches fall in one hour: then its one file is written without PARTITION BY, whose
          // partitioned writer costs the engine about 10 ms per statement (measured on chDB, 5k rows:
          // 32-33 vs 40-49 ms), the same bytes as the partitioned file of that hour.
          const range = rowBinary.tsRange
          const oneHour = range && hourOf(range[0]) === hourOf(range[1]) ? hourOf(range[0]) : undefined
          await client.command({ query: `INSERT INTO FUNCTION file(${sqlString(oneHour === undefined ? `${dir}/{_partition_id}.parquet` : `${dir}/${oneHour}.parquet`)}, Parquet)
            ${oneHour === undefined ? 'PARTITION BY intDiv(toUnixTimestamp64Milli(ts), 3600000)' : ''}
            SELECT ${castColumns} FROM ${from} ORDER BY ts, event_key
            SETTINGS ${PARQUET_WRITE_SETTINGS}` })
          const hours = (await readdir(dir)).map((name) => Number(name.replace(/\.parquet$/, ''))).sort((a, b) => a - b)
          let queried: HourStats[] | undefined
          for (const hour of hours) {
            const local = join(dir, `${hour}.parquet`)
            const footer = await footerStats(local)
            if (footer.count === 0) continue
            // The writer leaves out the statistics of a column holding a very long value: then that
            // file's bounds come from the query, as the row objects' would.
            const bounds = footer.bounds.size === bounded.length ? footer.bounds : (queried ??= await statsOf(from)).find((h) => h.hour === hour)?.bounds
            const body = await readFile(local)
            const path = dataPath(t, hour)
            await io.write(path, body)
            files.push({ path, recordCount: footer.count, sizeBytes: body.length, partition: { ts_hour: hour }, metrics: metricsOf(footer.count, columns, fields, (c) => bounds?.get(c.name)) })
          }
          return files
        } finally {
          await rm(dir, { recursive: true, force: true })
        }
      })
    }
    // Rows handed over only as bytes the table cannot be written from (a processor configured for a
    // lake on S3 whose catalog put the table elsewhere): refused, never committed as an empty snapshot.
    if (batch.events.length === 0 && rowBinary && rowBinary.bytes.length > 0) {
      throw new Error(`lake table at ${t.metadata.location}: the batch's rows came as RowBinary only, which this table is written from only on chDB or by a ClickHouse server on S3`)
    }
    const byHour = new Map<number, EventRow[]>()
    for (const r of batch.events) {
      const h = hourOf(r.ts)
      const list = byHour.get(h)
      if (list) list.push(r)
      else byHour.set(h, [r])
    }
    for (const [hour, group] of [...byHour].sort((a, b) => a[0] - b[0])) {
      const body = await encode(selectRows(group))
      const path = dataPath(t, hour)
      await io.write(path, body)
      files.push({ path, recordCount: group.length, sizeBytes: body.length, partition: { ts_hour: hour }, metrics: columnMetrics(group, columns, fields) })
    }
    return files
  }

  async function previousManifests(t: LoadedTable): Promise<ManifestFile[]> {
    const id = currentSnapshotId(t.metadata)
    if (id === null) return []
    const snap = (t.metadata.snapshots ?? []).find((s) => sameId(s['snapshot-id'], id))
    if (!snap) throw new RangeError(`current snapshot ${id} is missing from the table metadata`)
    return readAvroFile(await io.read(snap['manifest-list'])).records.map(normaliseManifestFile)
  }

  /**
   * The manifest list for a new snapshot: the new manifest, then the previous ones, with this
   * writer's small manifests merged into one once there are `commit.manifest.min-count-to-merge`.
   */
  async function manifestList(t: LoadedTable, added: ManifestFile, snapshotId: Id, sequenceNumber: number): Promise<ManifestFile[]> {
    const previous = await previousManifests(t)
    const m = t.metadata
    const spec = defaultSpec(m)
    const target = prop(m, 'commit.manifest.target-size-bytes')
    const small = previous.filter((f) => f.content === 0 && f.partition_spec_id === spec['spec-id'] && OWN_MANIFEST.test(f.manifest_path) && f.manifest_length < target)
    if (m.properties['commit.manifest-merge.enabled'] === 'false' || previous.length + 1 < prop(m, 'commit.manifest.min-count-to-merge') || small.length < 2) return [added, ...previous]
    const pick: ManifestFile[] = []
    let size = 0
    for (const f of small) {
      if (size >= target) break
      pick.push(f)
      size += f.manifest_length
    }
    const sources = await Promise.all(pick.map(async (file) => ({ file, entries: readAvroFile(await io.read(file.manifest_path)).records })))
    const location = `${m.location.replace(/\/$/, '')}/metadata/${randomUUID()}-adc-merged.avro`
    const merged = mergeManifests({ location, sources, snapshotId, sequenceNumber, schema: currentSchema(m), spec })
    await io.write(location, merged.bytes)
    const picked = new Set(pick.map((f) => f.manifest_path))
    return [added, merged.entry, ...previous.filter((f) => !picked.has(f.manifest_path))]
  }

  function totals(t: LoadedTable, files: DataFile[]): Record<string, string> {
    const id = currentSnapshotId(t.metadata)
    const prev = id === null ? undefined : (t.metadata.snapshots ?? []).find((s) => sameId(s['snapshot-id'], id))?.summary
    const n = (k: string) => Number(prev?.[k] ?? 0)
    const records = files.reduce((s, f) => s + f.recordCount, 0)
    const size = files.reduce((s, f) => s + f.sizeBytes, 0)
    return {
      'added-data-files': String(files.length),
      'added-records': String(records),
      'added-files-size': String(size),
      'changed-partition-count': String(new Set(files.map((f) => f.partition.ts_hour)).size),
      'total-data-files': String(n('total-data-files') + files.length),
      'total-records': String(n('total-records') + records),
      'total-files-size': String(n('total-files-size') + size),
      'total-delete-files': String(n('total-delete-files')),
      'total-position-deletes': String(n('total-position-deletes')),
      'total-equality-deletes': String(n('total-equality-deletes')),
    }
  }

  return {
    ident,
    client,
    catalog,
    io,
    columns,
    maxAttempts,
    s3: options.s3,
    open,
    /** Removes the scratch directory of the RowBinary and Parquet files (each is deleted after use). */
    close(): void {
      if (scratch) rmSync(scratch, { recursive: true, force: true })
      scratch = undefined
    },
    /** The table as last loaded or committed by this writer. */
    current: () => table,
    /** Reloads the table from the catalog (after another writer's commit). */
    async refresh(): Promise<LoadedTable> {
      table = (await catalog.load(ident)) ?? (await open())
      return table
    },

    /**
     * Appends a processed batch's events as one snapshot, unless a snapshot already holds an
     * overlapping log range (the batch is a replay): then nothing is written.
     */
    async probe(batch: Pick<SinkBatch, 'events' | 'eventsRowBinary'>): Promise<void> {
      // The same rows through the same engine parse as a data file, output discarded: a row the
      // engine refuses fails here, and nothing is written anywhere.
      const rowBinary = batch.eventsRowBinary
      if (table && onServerS3(table) && rowBinary) {
        refuseFor(rowBinary.refusal)
        if (rowBinary.bytes.length === 0) return
        // The server parses and casts the bytes as for a data file, into a table that keeps nothing.
        await insertWithBody(client, `INSERT INTO FUNCTION null(${sqlString(columns.map((c) => `${c.name} ${clickhouseType(c.type)}`).join(', '))})
            SELECT ${castColumns} FROM input(${sqlString(EVENT_FILE_STRUCTURE)}) FORMAT RowBinary`, rowBinary.bytes)
        return
      }
      if (fromRowBinary && rowBinary && !rowBinary.refusal) {
        if (rowBinary.bytes.length === 0) return
        await withScratch(rowBinary.bytes, (file) => client.command({ query: `SELECT ${castColumns} FROM ${rowBinaryTable(file)} FORMAT Null` }))
        return
      }
      if (batch.events.length === 0) return
      await client.command({ query: `${selectRows(batch.events)} FORMAT Null` })
    },
    async append(batch: Pick<SinkBatch, 'topic' | 'partition' | 'minOffset' | 'maxOffset' | 'events' | 'eventsRowBinary'>, { refresh = false } = {}): Promise<AppendResult> {
      let t = table && !refresh ? table : await this.refresh()
      if (batch.events.length === 0 && !batch.eventsRowBinary?.bytes.length) return { status: 'empty' }
      const seen = alreadyCommitted(t.metadata, batch)
      if (seen) return { status: 'already', ...seen }
      const snapshotId = newSnapshotId()
      const files = await writeDataFiles(t, batch)
      const spec = defaultSpec(t.metadata)
      const manifestLocation = `${t.metadata.location.replace(/\/$/, '')}/metadata/${randomUUID()}-adc-m0.avro`
      const manifest = buildManifest({ location: manifestLocation, files, snapshotId, schema: currentSchema(t.metadata), spec })
      await io.write(manifestLocation, manifest.bytes)
      for (let attempt = 1; ; attempt++) {
        const parentId = currentSnapshotId(t.metadata)
        const sequenceNumber = t.metadata['last-sequence-number'] + 1
        const list = await manifestList(t, { ...manifest.entry, sequence_number: sequenceNumber, min_sequence_number: sequenceNumber }, snapshotId, sequenceNumber)
        const listLocation = `${t.metadata.location.replace(/\/$/, '')}/metadata/snap-${snapshotId}-${attempt}-${randomUUID()}.avro`
        await io.write(listLocation, buildManifestList(list, { snapshotId, parentId, sequenceNumber }))
        const snapshot: Snapshot = {
          'snapshot-id': snapshotId,
          ...(parentId === null ? {} : { 'parent-snapshot-id': parentId }),
          'sequence-number': sequenceNumber,
          'timestamp-ms': Date.now(),
          'manifest-list': listLocation,
          summary: {
            operation: 'append',
            ...totals(t, files),
            [SUMMARY.topic]: batch.topic,
            [SUMMARY.partition]: String(batch.partition),
            [SUMMARY.minOffset]: String(batch.minOffset),
            [SUMMARY.maxOffset]: String(batch.maxOffset),
          },
          'schema-id': t.metadata['current-schema-id'],
        }
        const requirements: TableRequirement[] = [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': parentId }]
        const expired = expiredSnapshots(t.metadata, snapshot['timestamp-ms'], 1)
        const updates: TableUpdate[] = [
          { action: 'add-snapshot', snapshot },
          { action: 'set-snapshot-ref', 'ref-name': 'main', type: 'branch', 'snapshot-id': snapshotId },
          { action: 'set-properties', updates: { [watermarkKey(batch.topic, batch.partition)]: String(batch.maxOffset) } },
          ...(expired.length > 0 ? [{ action: 'remove-snapshots' as const, 'snapshot-ids': expired }] : []),
        ]
        try {
          table = await catalog.commit(ident, t, requirements, updates)
          // An expired snapshot's manifest list is referenced by nothing any more.
          const gone = new Set(expired.map(String))
          const lists = (t.metadata.snapshots ?? []).filter((s) => gone.has(String(s['snapshot-id']))).map((s) => s['manifest-list'])
          await Promise.all(lists.map((l) => io.delete(l).catch(() => undefined)))
          return { status: 'committed', snapshotId }
        } catch (err) {
          // Conflict: another writer committed first. Unknown outcome (timeout, 5xx): the commit may
          // have landed. Either way reload; our snapshot id tells whether it did.
          t = await this.refresh()
          if ((t.metadata.snapshots ?? []).some((s) => sameId(s['snapshot-id'], snapshotId))) return { status: 'committed', snapshotId }
          const other = alreadyCommitted(t.metadata, batch)
          if (other) return { status: 'already', ...other }
          if (!(err instanceof CommitConflictError) || attempt >= maxAttempts) throw err
        }
      }
    },
  }
}

export type LakeTable = ReturnType<typeof createLakeTable>
