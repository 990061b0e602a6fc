import { mkdtempSync, rmSync } from 'node:fs'
import { unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClickHouseClient } from '@clickhouse/client'
import { chTime, isWellFormed, toWellFormed } from '@adc/schemas'
import { insertWithBody, sqlString } from '../clickhouse/client.js'
import { probeTable } from '../clickhouse/ddl.js'
import { RowBinaryWriter } from './row-binary-writer.js'
import { SinkWriteError } from './sink-errors.js'
import { batchToken, type BadRowRow, type EventRow, type RollupRow, type Sink, type SinkBatch } from './sink.js'

export interface ClickHouseSinkOptions {
  client: ClickHouseClient
  database: string
  /**
   * Put `insert_deduplication_token` in every INSERT. Only a negative control turns this off (and
   * then also the engine's own content-hash dedupe, `insert_deduplicate=0`), to prove the crash tests
   * catch a double count. @default true
   */
  dedupTokens?: boolean
  /** Called after each table's insert resolved (crash-test hook). */
  afterTable?(table: string): void
}

/** events_raw's columns as the sink writes them, with the types their RowBinary values have. */
export const EVENT_COLUMN_TYPES = [
  ['event_key', 'String'], ['event_type', 'LowCardinality(String)'], ['event_id', 'String'], ['impression_id', 'String'],
  ['click_id', 'String'], ['campaign_id', 'String'], ['ad_id', 'String'], ['publisher_id', 'String'], ['request_id', 'String'],
  ['ts', "DateTime64(3, 'UTC')"], ['received_at', "DateTime64(3, 'UTC')"], ['channel', 'LowCardinality(String)'],
  ['device', 'LowCardinality(String)'], ['geo', 'LowCardinality(String)'], ['placement', 'String'], ['user_key', 'String'],
  ['ua', 'String'], ['ip_prefix', 'String'], ['ip_hash', 'String'], ['edge_source', 'LowCardinality(String)'],
  ['edge_dedupe', 'LowCardinality(String)'], ['prefetch', 'UInt8'], ['billable', 'UInt8'], ['reason', 'LowCardinality(String)'],
  ['ivt_score', 'Float32'], ['ivt_reasons', 'Array(LowCardinality(String))'], ['model_version', 'LowCardinality(String)'],
  ['joined', 'UInt8'], ['log_partition', 'UInt32'], ['log_offset', 'UInt64'], ['processed_at', "DateTime64(3, 'UTC')"],
  ['sign', 'Int8'], ['viewable', 'UInt8'], ['view_method', 'LowCardinality(String)'], ['no_consent', 'UInt8'], ['ua_hashed', 'UInt8'],
] as const satisfies ReadonlyArray<readonly [keyof EventRow, string]>
const EVENT_COLUMNS = EVENT_COLUMN_TYPES.map(([c]) => c)
/**
 * The structure file() reads the RowBinary scratch file with (the Iceberg sink reads the same bytes):
 * events_raw's columns, LowCardinality ones read as String. The bytes are the same (RowBinary writes
 * both alike); the engine reads a LowCardinality value from RowBinary one row at a time into its
 * dictionary, and converts a whole String column at once on insert. Measured on chDB, 20k rows:
 * an events_raw insert 24 vs 45 ms of CPU, the lake's Parquet 55 vs 78 ms.
 */
export const EVENT_FILE_STRUCTURE = EVENT_COLUMN_TYPES.map(([c, t]) => `${c} ${t.replace(/LowCardinality\((String)\)/g, '$1')}`).join(', ')

/**
 * events_raw rows as RowBinary bytes (see RowBinaryWriter: the engine reads them without parsing
 * text, about half the CPU per row of TabSeparated), ready for chDB's file() insert or an HTTP body.
 */
export function eventsRowBinary(rows: EventRow[]): NonNullable<SinkBatch['eventsRowBinary']> {
  const w = new RowBinaryWriter(rows.length * 512)
  let min = Infinity
  let max = -Infinity
  for (const r of rows) {
    writeEventRowBinary(w, r)
    if (r.ts < min) min = r.ts
    if (r.ts > max) max = r.ts
  }
  return { bytes: w.bytes(), refusal: w.refusal, ...(min <= max ? { tsRange: [min, max] as [number, number] } : {}) }
}

/** One events_raw row, RowBinary, in EVENT_COLUMNS order (BatchBuilder writes rows as it builds them). */
export function writeEventRowBinary(w: RowBinaryWriter, r: EventRow): void {
  w.str(r.event_key).str(r.event_type).str(r.event_id).str(r.impression_id).str(r.click_id)
    .str(r.campaign_id).str(r.ad_id).str(r.publisher_id).str(r.request_id).dt64(r.ts)
    .dt64(r.received_at).str(r.channel).str(r.device).str(r.geo).str(r.placement)
    .str(r.user_key).str(r.ua).str(r.ip_prefix).str(r.ip_hash).str(r.edge_source)
    .str(r.edge_dedupe).u8(r.prefetch).u8(r.billable).str(r.reason).f32(r.ivt_score)
    .strings(r.ivt_reasons).str(r.model_version).u8(r.joined).u32(r.log_partition).i64(r.log_offset).dt64(r.processed_at)
    .i8(r.sign).u8(r.viewable).str(r.view_method).u8(r.no_consent).u8(r.ua_hashed)
}

/** Whether the client runs on chDB (itself or behind a wrapper): one that reads local scratch files through file(). */
export function isOnChdb(client: ClickHouseClient): boolean {
  return chdbDirect(client) !== undefined || (client as unknown as { connection?: { chdb?: unknown } }).connection?.chdb !== undefined
}

/**
 * The batch's events_raw body: as the builder wrote it, or from the row objects. A body holding a
 * value the engine could not store (RowBinaryWriter `refusal`) is refused here, with the engine's
 * code for it, as the engine refused it in text.
 */
function eventsBody(batch: SinkBatch): Buffer {
  const { bytes, refusal } = batch.eventsRowBinary ?? eventsRowBinary(batch.events)
  refuseFor(refusal)
  return bytes
}

/** Throws a body's refusal (RowBinaryWriter `refusal`) as the engine's error with its code. */
export function refuseFor(refusal: string | undefined): void {
  if (refusal) throw Object.assign(new Error(refusal), { code: Number(/^Code: (\d+)/.exec(refusal)?.[1] ?? 41) })
}

const ROLLUP_STRUCTURE =
  'minute UInt32, campaign_id String, ad_id String, publisher_id String, geo String, device String, impressions Int64, clicks Int64, ivt_impressions Int64, ivt_clicks Int64, duplicates Int64, orphan_clicks Int64, repeat_clicks Int64, measured_impressions Int64, viewable_impressions Int64, uniques Array(String), last_received_at Int64'
const ROLLUP_COLUMNS = ['minute', 'campaign_id', 'ad_id', 'publisher_id', 'geo', 'device', 'impressions', 'clicks', 'ivt_impressions', 'ivt_clicks', 'duplicates', 'orphan_clicks', 'repeat_clicks', 'measured_impressions', 'viewable_impressions', 'uniques', 'last_received_at'] as const
/** rollup_minute's values from rows of ROLLUP_STRUCTURE: the engine computes each row's unique-count state from its uniques. */
const ROLLUP_SELECT = `toDateTime(minute, 'UTC'), campaign_id, ad_id, publisher_id, geo, device, impressions, clicks, ivt_impressions, ivt_clicks,
          duplicates, orphan_clicks, repeat_clicks, measured_impressions, viewable_impressions, arrayReduce('uniqState', uniques),
          fromUnixTimestamp64Milli(last_received_at, 'UTC')`

/** Rollup rows as RowBinary in ROLLUP_STRUCTURE's order (signed counts as Int64). */
export function rollupRowBinary(rows: readonly RollupRow[]): Buffer {
  const w = new RowBinaryWriter(1024 + rows.length * 256)
  for (const r of rows) {
    w.u32(r.minute).str(r.campaign_id).str(r.ad_id).str(r.publisher_id).str(r.geo).str(r.device)
      .i64(r.impressions).i64(r.clicks).i64(r.ivt_impressions).i64(r.ivt_clicks).i64(r.duplicates).i64(r.orphan_clicks)
      .i64(r.repeat_clicks).i64(r.measured_impressions).i64(r.viewable_impressions).strings(r.uniques).i64(r.last_received_at)
  }
  refuseFor(w.refusal)
  return w.bytes()
}

/**
 * A bad row as bad_rows stores it: every text field made well-formed, so the row that records why
 * a record could not be written can never itself be refused for its content (a lone surrogate
 * becomes a `\\ud800` escape in JSON, which ClickHouse's JSON formats refuse). When the payload was
 * not well-formed, `payload_original` keeps it exactly, as a JSON string literal.
 */
export function storableBadRow(r: BadRowRow): Omit<BadRowRow, 'received_at'> & { received_at: string; payload_original: string } {
  return {
    received_at: chTime(r.received_at),
    log_topic: toWellFormed(r.log_topic),
    log_partition: r.log_partition,
    log_offset: r.log_offset,
    reason: toWellFormed(r.reason),
    step: toWellFormed(r.step),
    details: toWellFormed(r.details),
    payload: toWellFormed(r.payload),
    payload_original: isWellFormed(r.payload) ? '' : JSON.stringify(r.payload),
    processor_artifact: toWellFormed(r.processor_artifact),
    processor_version: toWellFormed(r.processor_version),
  }
}

/** chDB's raw insert: the payload handed to the engine as bytes, parsed by its C++ input format. */
type RawInsert = (params: { table: string; columns?: string[]; values: Buffer; format: 'RowBinary' | 'JSONEachRow'; settings?: Record<string, string | number> }) => Promise<unknown>

/** chDB's direct access to its engine: what the client's calls and raw inserts go through. */
export interface ChdbDirect {
  rawInsert: RawInsert
  /** One SQL text (may hold several statements), without the client's settings prelude. */
  queryAsync(sql: string): Promise<unknown>
}

/**
 * chDB's direct access when `client` runs on chDB (`chdb/connection` exposes it as `connection.chdb`),
 * otherwise undefined (a ClickHouse server: inserts go over HTTP as usual).
 *
 * Why: through the client, chDB glues an insert's body to its SQL text and the engine reads it back
 * from the query (measured 14 µs vs 6 µs of CPU per events_raw row for the same 5000 rows), and every
 * call is prefixed with one `SET` per client setting (four statements before the real one, about
 * 1 ms). Inserts through this path carry the settings they need in their own SQL.
 * Only the client object that owns the connection qualifies: a wrapper around a client (one that
 * intercepts exec/command, e.g. to stall writes) keeps its calls going through the client.
 */
export function chdbDirect(client: ClickHouseClient): ChdbDirect | undefined {
  if (!Object.prototype.hasOwnProperty.call(client, 'connection')) return undefined
  const ext = (client as unknown as { connection?: { chdb?: Partial<ChdbDirect> } }).connection?.chdb
  if (typeof ext?.rawInsert !== 'function' || typeof ext.queryAsync !== 'function') return undefined
  return { rawInsert: ext.rawInsert.bind(ext), queryAsync: ext.queryAsync.bind(ext) }
}

/**
 * Writes a batch to ClickHouse (chDB or a server, same SQL): events_raw, rollup_minute,
 * rollup_ivt_minute, ivt_decisions, bad_rows and edge_stats_minute. Every INSERT carries
 * `SETTINGS insert_deduplication_token='<topic>-<partition>-<min>-<max>-<table>'` in its SQL text
 * (never as a per-call setting: chDB keeps per-call settings as a session SET, which would dedupe
 * later unrelated inserts), and every target table has `non_replicated_deduplication_window`, so a
 * batch written again after a crash is dropped by the engine table by table.
 * On chDB the inserts go through its direct access (same SQL, same settings; see chdbDirect).
 */
export function createClickHouseSink({ client, database, dedupTokens = true, afterTable }: ClickHouseSinkOptions): Sink {
  /** Where a table's rows go: the table itself, or its Null-engine twin when probing (no token, nothing stored). */
  interface Target { probe: boolean }
  const REAL: Target = { probe: false }
  const PROBE: Target = { probe: true }
  const tableOf = (table: string, to: Target): string => `${database}.${to.probe ? probeTable(table) : table}`
  const settings = (batch: SinkBatch, table: string, to: Target): string =>
    to.probe ? 'SETTINGS async_insert=0'
      : dedupTokens ? `SETTINGS insert_deduplication_token=${sqlString(batchToken(batch, table))}, async_insert=0` : 'SETTINGS insert_deduplicate=0, async_insert=0'
  const direct = chdbDirect(client)
  // A client on chDB, itself or behind a wrapper: its exec glues a body into the SQL text as text,
  // which binary rows do not survive, so RowBinary goes through file() (the wrapper's `command`
  // when there is one). A ClickHouse server takes the bytes as the HTTP body.
  const onChdb = isOnChdb(client)
  const rawSettings = (batch: SinkBatch, table: string, to: Target): Record<string, string | number> =>
    to.probe ? { async_insert: 0 } : dedupTokens ? { insert_deduplication_token: batchToken(batch, table), async_insert: 0 } : { insert_deduplicate: 0, async_insert: 0 }

  // chDB reads an insert from a file through file() with about half the CPU per row of its raw
  // insert (measured 4.1–5.7 vs 6.9–8.3 µs per events_raw row at 20k rows, TabSeparated): the bytes
  // go to the engine's file reader instead of through the query buffer. One scratch file per insert,
  // deleted once the insert resolved; a crash can leave one behind in the OS temp dir, never a row.
  let scratch: string | undefined
  let seq = 0
  async function insertFromFile(batch: SinkBatch, table: string, to: Target, columns: readonly string[], body: Buffer, structure = EVENT_FILE_STRUCTURE, select = '*'): Promise<void> {
    scratch ??= mkdtempSync(join(tmpdir(), 'adc-chdb-insert-'))
    const file = join(scratch, `${process.pid}-${++seq}.bin`)
    await writeFile(file, body)
    try {
      const sql = `INSERT INTO ${tableOf(table, to)} (${columns.join(', ')}) ${settings(batch, table, to)} SELECT ${select} FROM file(${sqlString(file)}, RowBinary, ${sqlString(structure)})`
      if (direct) await direct.queryAsync(sql)
      else await client.command({ query: sql })
    } finally {
      await unlink(file).catch(() => undefined)
    }
  }

  async function insertBody(batch: SinkBatch, table: string, to: Target, columns: readonly string[] | undefined, format: 'RowBinary' | 'JSONEachRow', body: Buffer | string): Promise<void> {
    if ((direct || onChdb) && format === 'RowBinary' && columns && typeof body !== 'string') {
      await insertFromFile(batch, table, to, columns, body)
    } else if (direct) {
      const values = typeof body === 'string' ? Buffer.from(body) : body
      await direct.rawInsert({ table: tableOf(table, to), ...(columns ? { columns: [...columns] } : {}), values, format, settings: rawSettings(batch, table, to) })
    } else {
      const cols = columns ? ` (${columns.join(', ')})` : ''
      await insertWithBody(client, `INSERT INTO ${tableOf(table, to)}${cols} ${settings(batch, table, to)} FORMAT ${format}`, body)
    }
    if (!to.probe) afterTable?.(table)
  }

  async function insertRows(batch: SinkBatch, table: string, to: Target, rows: unknown[]): Promise<void> {
    if (rows.length === 0) return
    let body = ''
    for (const r of rows) body += JSON.stringify(r) + '\n'
    await insertBody(batch, table, to, undefined, 'JSONEachRow', body)
  }

  async function insertRollup(batch: SinkBatch, to: Target): Promise<void> {
    if (batch.rollup.length === 0) return
    // uniqState must be computed by the engine, so the pre-aggregated rows go in as rows with their
    // uniques and arrayReduce turns each row's uniques into its state (the builder made one row per
    // key, so no GROUP BY; the table sums and merges rows of one key anyway). They go as RowBinary:
    // on chDB read through file(), as events_raw (measured statement by statement on chDB, 9 batches
    // of up to 20k events, about 20 rollup rows each: 26 ms of CPU per batch instead of 29 for the
    // insert with its view, and 10 instead of 16 for its probe, against the same rows as JSON in the
    // SQL text); a server reads them as the request body through input(), as the lake's data files.
    const body = rollupRowBinary(batch.rollup)
    if (direct || onChdb) {
      await insertFromFile(batch, 'rollup_minute', to, ROLLUP_COLUMNS, body, ROLLUP_STRUCTURE, ROLLUP_SELECT)
    } else {
      await insertWithBody(client, `INSERT INTO ${tableOf('rollup_minute', to)} (${ROLLUP_COLUMNS.join(', ')})
        ${settings(batch, 'rollup_minute', to)}
        SELECT ${ROLLUP_SELECT} FROM input(${sqlString(ROLLUP_STRUCTURE)}) FORMAT RowBinary`, body)
    }
    if (!to.probe) afterTable?.('rollup_minute')
  }

  /** Every table but events_raw: few rows per batch (aggregates, IVT decisions, bad rows). */
  async function writeSmall(batch: SinkBatch, to: Target): Promise<void> {
    await insertRollup(batch, to)
    await insertRows(batch, 'rollup_ivt_minute', to, batch.rollupIvt)
    await insertRows(batch, 'ivt_decisions', to, batch.ivtDecisions.map((r) => ({ ...r, ts: chTime(r.ts), decided_at: chTime(r.decided_at) })))
    await insertRows(batch, 'bad_rows', to, batch.badRows.map(storableBadRow))
    await insertRows(batch, 'edge_stats_minute', to, batch.edgeStats)
  }

  return {
    name: 'clickhouse',
    async close() {
      if (scratch) rmSync(scratch, { recursive: true, force: true })
      scratch = undefined
    },
    /**
     * A batch the engine refuses for its content must leave nothing stored, or a rebuilt batch
     * (without the refused records) would meet its own first copy under the same tokens. So the
     * small tables are probed into their Null twins first (one call per non-empty table, no
     * parts written); events_raw, the one large insert, is written first and is atomic itself; the
     * small tables then take rows the engine already parsed once.
     */
    async write(batch) {
      try {
        await writeSmall(batch, PROBE)
        const body = eventsBody(batch)
        if (body.length > 0) await insertBody(batch, 'events_raw', REAL, EVENT_COLUMNS, 'RowBinary', body)
        await writeSmall(batch, REAL)
      } catch (err) {
        throw new SinkWriteError('clickhouse', err)
      }
    },
    /** Parses the batch's rows into the Null twins: throws what `write` would for their content, stores nothing. */
    async probe(batch) {
      try {
        const body = eventsBody(batch)
        if (body.length > 0) await insertBody(batch, 'events_raw', PROBE, EVENT_COLUMNS, 'RowBinary', body)
        await writeSmall(batch, PROBE)
      } catch (err) {
        throw new SinkWriteError('clickhouse', err)
      }
    },
  }
}
