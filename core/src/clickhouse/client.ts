import { createClient, type ClickHouseClient, type ClickHouseClientConfigOptions } from '@clickhouse/client'
import type { createChdbConnection as CreateChdbConnection } from 'chdb/connection'
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import { ConfigError } from '../config.js'
import { ddl } from './ddl.js'
import { hourlyRollups, retentionStatements, type RetentionConfig } from './retention.js'

const require = createRequire(import.meta.url)

/**
 * chDB, loaded on first use only: its native library (about 550 MB, published for x64 Linux and
 * macOS only) is never mapped into a process that talks to a ClickHouse server, so core runs with
 * `CLICKHOUSE_URL` on any platform, and an image built without chDB still starts.
 */
function loadChdb(): typeof CreateChdbConnection {
  try {
    return (require('chdb/connection') as { createChdbConnection: typeof CreateChdbConnection }).createChdbConnection
  } catch (err) {
    throw new ConfigError(
      `embedded ClickHouse (chDB) cannot be loaded on ${process.platform}-${process.arch} (${(err as Error).message.split('\n')[0]}): set CLICKHOUSE_URL to a ClickHouse server`,
    )
  }
}

export type { ClickHouseClient }

export interface ClickHouseOptions {
  /** ClickHouse server HTTP URL (`CLICKHOUSE_URL`); unset means embedded chDB. */
  url?: string
  /** chDB data directory (one per process: chDB locks it). Ignored when `url` is set. */
  dataDir: string
  username?: string
  password?: string
}

/**
 * Settings pinned on every call so chDB (ClickHouse 26.x defaults) and an older server answer alike.
 * Client-level settings are re-sent with each call, unlike per-call settings, which chDB applies as a
 * session `SET` that leaks into later calls (see ENGINES.md): per-insert settings such as
 * `insert_deduplication_token` therefore go into the INSERT's SQL text, never into `clickhouse_settings`.
 */
export const PINNED_SETTINGS = {
  async_insert: 0,
  output_format_json_quote_64bit_integers: 0,
  session_timezone: 'UTC',
  /** Rollup inserts carry their pre-aggregated rows in the SQL text (`format()` table function). */
  max_query_size: '268435456',
} as const

/**
 * One `@clickhouse/client` client for both engines: a ClickHouse server over HTTP when `url` is set,
 * otherwise chDB in-process through `chdb/connection` (same API, same SQL).
 * @example const ch = createClickHouse({ dataDir: path.join(os.tmpdir(), 'adc-chdb') }); await migrate(ch, 'adc')
 */
export function createClickHouse(options: ClickHouseOptions): ClickHouseClient {
  const base: ClickHouseClientConfigOptions = {
    clickhouse_settings: { ...PINNED_SETTINGS },
  }
  if (options.url) {
    return createClient({ ...base, url: options.url, username: options.username ?? 'default', password: options.password ?? '' })
  }
  mkdirSync(options.dataDir, { recursive: true })
  // The cast: @clickhouse/client bundles its own copy of client-common's Connection type.
  const connection = loadChdb()({ path: options.dataDir }) as unknown as NonNullable<ClickHouseClientConfigOptions['connection']>
  return createClient({ ...base, connection })
}

/**
 * Creates or upgrades core's tables (idempotent: `IF NOT EXISTS`, columns only added). `retention` sets the tables' TTLs (core's main passes the
 * configured ones, DEFAULT_RETENTION unless changed); without it no TTL is set or changed, so tests
 * on fixed dates are not expired by the wall clock.
 */
export async function migrate(client: ClickHouseClient, database: string, retention?: RetentionConfig): Promise<void> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw new RangeError(`invalid database name: ${database}`)
  for (const statement of ddl(database)) await client.command({ query: statement })
  const tables = async () => new Map(
    (await (await client.query({ query: `SELECT name, engine_full FROM system.tables WHERE database = {db:String}`, query_params: { db: database }, format: 'JSONEachRow' }))
      .json<{ name: string; engine_full: string }>()).map((t) => [t.name, t.engine_full]),
  )
  const existing = await tables()
  for (const hourly of hourlyRollups(database)) {
    await client.command({ query: hourly.create })
    // Minute rows written before the hourly view existed are rolled up once (nothing writes during migrate).
    if (!existing.has(hourly.table)) await client.command({ query: hourly.backfill })
    await client.command({ query: hourly.view })
  }
  if (retention) for (const statement of retentionStatements(database, retention, await tables())) await client.command({ query: statement })
}

/** Quotes a string literal for ClickHouse SQL text (for settings such as the dedup token). */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

/**
 * Runs an INSERT whose data is `body`, sent as the HTTP body (the statement ends with the body's
 * FORMAT): a table's own rows, or the `input()` an INSERT ... SELECT reads them through. Not for
 * chDB, whose client glues a body into the SQL text.
 */
export async function insertWithBody(client: ClickHouseClient, query: string, body: Buffer | string): Promise<void> {
  const res = await client.exec({ query, values: Readable.from([body]) })
  res.stream.resume()
}
