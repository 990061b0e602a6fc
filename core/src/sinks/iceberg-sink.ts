import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Logger } from '../logger.js'
import { createRestCatalog, createSqlCatalog, type Catalog, type RestCatalogOptions } from '../lake/catalog.js'
import { createFileIO, type S3Options } from '../lake/io.js'
import type { LakeColumn } from '../lake/schema.js'
import { createLakeTable, type LakeTable } from '../lake/table.js'
import { SinkWriteError } from './sink-errors.js'
import type { Sink } from './sink.js'

export interface IcebergSinkOptions {
  /** chDB (or a ClickHouse server) that encodes the Parquet data files. */
  client: ClickHouseClient
  /** Unused (kept for the processor's call); the table is named by `namespace` and `table`. */
  database?: string
  /**
   * Embedded lake root (`<DATA_DIR>/iceberg`): the SQLite catalog `catalog.db` (Iceberg's JDBC
   * catalog layout, opened by pyiceberg's SqlCatalog) and the warehouse `warehouse/` beside it.
   * Created on first start. Ignored when `catalog` (a REST catalog) is set.
   */
  dir?: string
  /** Warehouse location for the embedded catalog's tables instead of `<dir>/warehouse` (`s3://bucket/prefix`). */
  warehouse?: string
  /** Iceberg REST catalog (scale-out); the table lives where the catalog's warehouse says. */
  catalog?: RestCatalogOptions & { /** Table location on create; unset: the catalog's default. */ location?: string }
  /** S3-compatible storage for `s3://` locations (MinIO, S3). */
  s3?: S3Options
  /** @default ['adc'] */
  namespace?: string[]
  /** @default 'events_raw' */
  table?: string
  /** Columns written (tests narrow it to exercise schema evolution). @default LAKE_COLUMNS */
  columns?: readonly LakeColumn[]
  /** Table properties when the table is created (manifest merging, snapshot expiry; see DEFAULT_PROPERTIES). */
  properties?: Record<string, string>
  logger?: Logger
}

/** The catalog, file IO and table location a sink's options describe. */
export function lakeSetup(options: Omit<IcebergSinkOptions, 'client'>): { catalog: Catalog; location: string; io: ReturnType<typeof createFileIO> } {
  const namespace = options.namespace ?? ['adc']
  const table = options.table ?? 'events_raw'
  const io = createFileIO(options.s3)
  if (options.catalog) {
    const base = (options.catalog.location ?? '').replace(/\/$/, '')
    return { catalog: createRestCatalog(options.catalog), io, location: base ? `${base}/${namespace.join('/')}/${table}` : '' }
  }
  if (!options.dir) throw new RangeError('the Iceberg sink needs a local `dir` or a REST `catalog`')
  const root = resolve(options.dir)
  return {
    catalog: createSqlCatalog({ path: resolve(root, 'catalog.db'), io }),
    io,
    location: `${(options.warehouse ?? pathToFileURL(resolve(root, 'warehouse')).href).replace(/\/$/, '')}/${namespace.join('.')}.db/${table}`,
  }
}

/**
 * Raw events as an Iceberg v2 table (`adc.events_raw`, partitioned by `hour(ts)`), registered in a
 * catalog: the embedded SQLite catalog by default, the REST catalog in scale-out. Readable by
 * pyiceberg, Spark, Trino, DuckDB and ClickHouse (see README, "The raw-event lake").
 *
 * Exactly once with the processor: it writes Iceberg only after ClickHouse acknowledged and before
 * the batch's state commit; each batch is one atomic snapshot whose summary records its log topic,
 * partition and offset range. A batch written again finds that snapshot and writes nothing, so after
 * a crash the range is either fully in the table, once, or absent.
 */
export async function createIcebergSink(options: IcebergSinkOptions): Promise<Sink & { lake: LakeTable }> {
  const { catalog, io, location } = lakeSetup(options)
  const lake = createLakeTable({ client: options.client, catalog, io, ident: { namespace: options.namespace ?? ['adc'], name: options.table ?? 'events_raw' }, location, ...(options.columns ? { columns: options.columns } : {}), ...(options.properties ? { properties: options.properties } : {}), ...(options.s3 ? { s3: options.s3 } : {}) })
  await lake.open()
  const log = options.logger?.child({ component: 'iceberg-sink' })
  return {
    name: 'iceberg',
    lake,
    async write(batch, { recovering }) {
      let r: Awaited<ReturnType<LakeTable['append']>>
      try {
        r = await lake.append(batch, { refresh: recovering })
      } catch (err) {
        // Sorted like ClickHouse's refusals: content (the Parquet encoder refused rows) or infrastructure.
        throw new SinkWriteError('iceberg', err)
      }
      if (r.status !== 'already') return
      const fields = { topic: batch.topic, partition: batch.partition, minOffset: batch.minOffset, maxOffset: batch.maxOffset, snapshotId: r.snapshotId === undefined ? null : String(r.snapshotId) }
      // Outside a replay this means the log's offsets went back (a log reset) while the lake kept its table.
      if (recovering) log?.info(fields, 'iceberg batch already committed')
      else log?.warn(fields, 'iceberg range already committed outside a replay: batch not written to the lake (was the log reset?)')
    },
    async probe(batch) {
      try {
        await lake.probe(batch)
      } catch (err) {
        throw new SinkWriteError('iceberg', err)
      }
    },
    async close() {
      lake.close()
      catalog.close?.()
    },
  }
}
