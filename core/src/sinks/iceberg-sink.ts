import { relative, resolve, isAbsolute } from 'node:path'
import { Readable } from 'node:stream'
import type { ClickHouseClient } from '@clickhouse/client'
import { sqlString } from '../clickhouse/client.js'
import { probeTable } from '../clickhouse/ddl.js'
import { SinkWriteError } from './sink-errors.js'
import type { Sink, SinkBatch } from './sink.js'

export interface IcebergSinkOptions {
  client: ClickHouseClient
  database: string
  /**
   * Table directory. chDB only reads and writes files inside its user files path, the process's
   * working directory, so the directory must lie under it (it is passed to chDB relative to it).
   */
  dir?: string
  /**
   * Iceberg on S3-compatible object storage instead of a local directory (scale-out: MinIO, S3):
   * the table's base URL (`http://minio:9000/warehouse/events_lake/`) and credentials. ClickHouse
   * (and chDB) write it with the `IcebergS3` engine; any Iceberg reader reads it from there.
   */
  s3?: { url: string; accessKeyId: string; secretAccessKey: string }
  /** @default 'events_lake' */
  table?: string
}

const COLUMNS = `event_key String, event_type String, event_id String, impression_id String, click_id String,
  campaign_id String, ad_id String, publisher_id String, ts DateTime64(6, 'UTC'), received_at DateTime64(6, 'UTC'),
  channel String, device String, geo String, user_key String, ua String, ip_prefix String, ip_hash String,
  billable Int32, reason String, ivt_score Float32, model_version String, joined Int32, sign Int32,
  log_partition Int32, log_offset Int64, viewable Int32, view_method String`

const micros = (ms: number): string => new Date(ms).toISOString().slice(0, 23).replace('T', ' ')

/** Relative path chDB accepts, or a clear error at start (a missing sink fails at start, never later). */
export function icebergPath(dir: string): string {
  const rel = relative(process.cwd(), resolve(dir))
  if (rel.startsWith('..') || isAbsolute(rel)) throw new RangeError(`Iceberg directory ${dir} must be inside the working directory ${process.cwd()} (chDB user files path)`)
  return rel || '.'
}

/**
 * Raw events as an Iceberg table on local disk (chDB `IcebergLocal`, Parquet), partitioned by
 * `toRelativeHourNum(ts)` (Iceberg's `hour` transform; `toStartOfHour` is refused). Readable by any
 * Iceberg reader, e.g. `icebergLocal('<dir>')`.
 *
 * Iceberg inserts have no dedup token, so idempotency comes from ordering and a probe: the processor
 * writes Iceberg only after the ClickHouse sink acknowledged, and the batch's state commit (LMDB)
 * follows the Iceberg write. Each Iceberg insert is one atomic snapshot commit, so after a crash the
 * range is either fully in the table or absent: when a batch is written again (`recovering`), the
 * sink first counts rows with this partition and offset range and skips the insert if any are there.
 */
/** Engine and table function arguments for the table's location: local directory or S3. */
export function icebergLocation(options: Pick<IcebergSinkOptions, 'dir' | 's3'>): { engine: string; reader: string } {
  if (options.s3) {
    const { url, accessKeyId, secretAccessKey } = options.s3
    const args = `${sqlString(url)}, ${sqlString(accessKeyId)}, ${sqlString(secretAccessKey)}`
    return { engine: `IcebergS3(${args}, 'Parquet')`, reader: `icebergS3(${args})` }
  }
  if (!options.dir) throw new RangeError('the Iceberg sink needs a local `dir` or an `s3` location')
  const path = sqlString(icebergPath(options.dir))
  return { engine: `IcebergLocal(${path}, 'Parquet')`, reader: `icebergLocal(${path})` }
}

/** The batch's raw rows as the Iceberg table's JSONEachRow. */
function lakeRows(batch: SinkBatch): string {
  let body = ''
  for (const r of batch.events) {
    body += JSON.stringify({
      event_key: r.event_key, event_type: r.event_type, event_id: r.event_id, impression_id: r.impression_id, click_id: r.click_id,
      campaign_id: r.campaign_id, ad_id: r.ad_id, publisher_id: r.publisher_id, ts: micros(r.ts), received_at: micros(r.received_at),
      channel: r.channel, device: r.device, geo: r.geo, user_key: r.user_key, ua: r.ua, ip_prefix: r.ip_prefix, ip_hash: r.ip_hash,
      billable: r.billable, reason: r.reason, ivt_score: r.ivt_score, model_version: r.model_version, joined: r.joined, sign: r.sign,
      log_partition: r.log_partition, log_offset: r.log_offset, viewable: r.viewable, view_method: r.view_method,
    }) + '\n'
  }
  return body
}

export async function createIcebergSink({ client, database, dir, s3, table = 'events_lake' }: IcebergSinkOptions): Promise<Sink> {
  const location = icebergLocation({ dir, s3 })
  await client.command({ query: `CREATE TABLE IF NOT EXISTS ${database}.${table} (${COLUMNS}) ENGINE = ${location.engine} PARTITION BY toRelativeHourNum(ts)` })
  // Same columns, ENGINE = Null: parses the rows and keeps nothing (see Sink.probe).
  await client.command({ query: `CREATE TABLE IF NOT EXISTS ${database}.${probeTable(table)} (${COLUMNS}) ENGINE = Null` })
  return {
    name: 'iceberg',
    async write(batch, { recovering }) {
      if (batch.events.length === 0) return
      try {
        if (recovering) {
          const rs = await client.query({
            query: `SELECT count() AS n FROM ${location.reader} WHERE log_partition = ${batch.partition} AND log_offset BETWEEN ${batch.minOffset} AND ${batch.maxOffset}`,
            format: 'JSONEachRow',
          })
          const [row] = await rs.json<{ n: number }>()
          if (Number(row?.n ?? 0) > 0) return
        }
        const res = await client.exec({ query: `INSERT INTO ${database}.${table} SETTINGS allow_insert_into_iceberg = 1 FORMAT JSONEachRow`, values: Readable.from([lakeRows(batch)]) })
        res.stream.resume()
      } catch (err) {
        throw new SinkWriteError('iceberg', err)
      }
    },
    async probe(batch) {
      if (batch.events.length === 0) return
      try {
        const res = await client.exec({ query: `INSERT INTO ${database}.${probeTable(table)} SETTINGS async_insert = 0 FORMAT JSONEachRow`, values: Readable.from([lakeRows(batch)]) })
        res.stream.resume()
      } catch (err) {
        throw new SinkWriteError('iceberg', err)
      }
    },
  }
}
