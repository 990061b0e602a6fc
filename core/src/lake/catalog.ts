import type { ReasonCode } from '@adc/schemas'
import Database from 'better-sqlite3'
import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { FileIO } from './io.js'
import { parseJson, stringifyJson } from './json.js'
import { applyUpdates, checkRequirements, CommitConflictError, newTableMetadata, type PartitionSpec, type TableMetadata, type TableRequirement, type TableUpdate } from './metadata.js'
import type { IcebergSchema } from './schema.js'

export interface TableIdent { namespace: string[]; name: string }
export interface LoadedTable { metadataLocation: string; metadata: TableMetadata }
export interface CreateTableRequest {
  name: string
  location: string
  schema: IcebergSchema
  lastColumnId: number
  spec: PartitionSpec
  properties: Record<string, string>
}

/**
 * An Iceberg catalog: where a table's current metadata file is recorded, and the one place a
 * commit is made atomic (compare-and-swap on the metadata location, or the REST catalog's
 * requirements). Both implementations take the REST protocol's requirement/update shapes.
 */
export interface Catalog {
  readonly kind: 'sql' | 'rest'
  load(id: TableIdent): Promise<LoadedTable | undefined>
  create(id: TableIdent, request: CreateTableRequest): Promise<LoadedTable>
  /** Commits atomically or throws CommitConflictError (nothing changed: reload and retry). */
  commit(id: TableIdent, base: LoadedTable, requirements: TableRequirement[], updates: TableUpdate[]): Promise<LoadedTable>
  close?(): void
}

/** Keeps this many previous metadata files in the metadata log (Iceberg's default). */
const METADATA_LOG_MAX = 100

/**
 * The embedded catalog: Iceberg's JDBC catalog tables in a SQLite file (`iceberg_tables`,
 * `iceberg_namespace_properties`), the layout pyiceberg's `SqlCatalog`, Spark's `JdbcCatalog` and the
 * Iceberg REST fixture open. The catalog writes metadata files itself (`<n>-<uuid>.metadata.json`,
 * plus `version-hint.text` for path-based readers) and commits by compare-and-swap on the row.
 */
export function createSqlCatalog({ path, name = 'adc', io }: { path: string; name?: string; io: FileIO }): Catalog {
  mkdirSync(dirname(path), { recursive: true })
  const db = new Database(path)
  db.pragma('busy_timeout = 5000')
  db.exec(`CREATE TABLE IF NOT EXISTS iceberg_tables (
      catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL,
      metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000), iceberg_type VARCHAR(5),
      PRIMARY KEY (catalog_name, table_namespace, table_name));
    CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
      catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL, property_key VARCHAR(255) NOT NULL,
      property_value VARCHAR(1000), PRIMARY KEY (catalog_name, namespace, property_key));`)
  // Catalogs created by older pyiceberg versions lack the JDBC catalog's v1 column.
  if (!(db.prepare('PRAGMA table_info(iceberg_tables)').all() as { name: string }[]).some((c) => c.name === 'iceberg_type')) db.exec('ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)')
  const ns = (id: TableIdent) => id.namespace.join('.')
  const row = (id: TableIdent) =>
    db.prepare('SELECT metadata_location AS loc FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?').get(name, ns(id), id.name) as { loc: string | null } | undefined

  async function readMetadata(location: string): Promise<LoadedTable> {
    return { metadataLocation: location, metadata: parseJson<TableMetadata>((await io.read(location)).toString()) }
  }

  async function writeMetadata(metadata: TableMetadata, previous: string | undefined): Promise<string> {
    const version = previous ? Number(/(\d+)-[^/]*\.metadata\.json$/.exec(previous)?.[1] ?? 0) + 1 : 0
    const stem = `${String(version).padStart(5, '0')}-${randomUUID()}`
    const location = `${metadata.location.replace(/\/$/, '')}/metadata/${stem}.metadata.json`
    await io.write(location, Buffer.from(stringifyJson(metadata, 2)))
    return location
  }

  async function hint(metadata: TableMetadata, location: string): Promise<void> {
    const stem = /([^/]+)\.metadata\.json$/.exec(location)![1]!
    await io.write(`${metadata.location.replace(/\/$/, '')}/metadata/version-hint.text`, Buffer.from(stem))
  }

  return {
    kind: 'sql',
    async load(id) {
      const r = row(id)
      return r?.loc ? readMetadata(r.loc) : undefined
    },
    async create(id, req) {
      const metadata = newTableMetadata(req.location, req.schema, req.lastColumnId, req.spec, req.properties)
      const location = await writeMetadata(metadata, undefined)
      db.transaction(() => {
        db.prepare(`INSERT OR IGNORE INTO iceberg_namespace_properties VALUES (?, ?, 'exists', 'true')`).run(name, ns(id))
        db.prepare(`INSERT OR IGNORE INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type) VALUES (?, ?, ?, ?, NULL, 'TABLE')`).run(name, ns(id), id.name, location)
      })()
      // Another writer may have created it first: theirs stands.
      const created = await this.load(id)
      if (created?.metadataLocation === location) await hint(metadata, location)
      return created!
    },
    async commit(id, base, requirements, updates) {
      let current = base
      const now = row(id)?.loc
      if (!now) throw new CommitConflictError(`table ${ns(id)}.${id.name} is not in the catalog`)
      if (now !== base.metadataLocation) current = await readMetadata(now)
      checkRequirements(current.metadata, requirements)
      const next = applyUpdates(current.metadata, updates, current.metadataLocation)
      const keep = Number(next.properties['write.metadata.previous-versions-max'] ?? METADATA_LOG_MAX)
      const log = next['metadata-log'] ?? []
      const dropped = log.slice(0, Math.max(0, log.length - keep))
      next['metadata-log'] = log.slice(log.length - Math.min(keep, log.length))
      const location = await writeMetadata(next, current.metadataLocation)
      const swapped = db
        .prepare('UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?')
        .run(location, current.metadataLocation, name, ns(id), id.name, current.metadataLocation)
      if (swapped.changes !== 1) throw new CommitConflictError('the table was committed by another writer')
      await hint(next, location)
      // Iceberg's write.metadata.delete-after-commit.enabled: metadata files that left the log go.
      if (next.properties['write.metadata.delete-after-commit.enabled'] === 'true') {
        await Promise.all(dropped.map((d) => io.delete(d['metadata-file']).catch(() => undefined)))
      }
      return { metadataLocation: location, metadata: next }
    },
    close() {
      db.close()
    },
  }
}

export interface RestCatalogOptions {
  /** Base URL of the catalog (`http://iceberg-rest:8181`), without `/v1`. */
  url: string
  /** Warehouse name or location passed to `/v1/config`. */
  warehouse?: string
  /** Bearer token, when the catalog requires one. */
  token?: string
  fetch?: typeof fetch
}

export class CatalogError extends Error {
  readonly reason: ReasonCode = 'lake_catalog_error'
  constructor(message: string, readonly status: number) {
    super(message)
  }
}

/**
 * The Iceberg REST catalog protocol (scale-out): the catalog server writes metadata files and
 * applies a commit only when every requirement holds (optimistic concurrency; 409 otherwise).
 */
export function createRestCatalog(options: RestCatalogOptions): Catalog {
  const doFetch = options.fetch ?? fetch
  let prefix: Promise<string> | undefined
  const base = options.url.replace(/\/$/, '')
  const headers = { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) }

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    prefix ??= (async () => {
      const q = options.warehouse ? `?warehouse=${encodeURIComponent(options.warehouse)}` : ''
      const res = await doFetch(`${base}/v1/config${q}`, { headers })
      if (!res.ok) throw new CatalogError(`catalog config: ${res.status} ${await res.text()}`, res.status)
      const cfg = (await res.json()) as { overrides?: Record<string, string>; defaults?: Record<string, string> }
      const p = cfg.overrides?.prefix ?? cfg.defaults?.prefix
      return p ? `/${p}` : ''
    })().catch((err: unknown) => {
      prefix = undefined
      throw err
    })
    const res = await doFetch(`${base}/v1${await prefix}${path}`, { method, headers, ...(body === undefined ? {} : { body: stringifyJson(body) }) })
    const text = await res.text()
    return { status: res.status, json: text ? parseJson(text) : undefined }
  }
  const nsPath = (id: TableIdent) => `/namespaces/${encodeURIComponent(id.namespace.join('\u001f'))}`
  const message = (r: { status: number; json: unknown }) => `${r.status} ${JSON.stringify((r.json as { error?: { message?: string } })?.error?.message ?? r.json)}`
  const loaded = (r: { json: unknown }): LoadedTable => {
    const j = r.json as { 'metadata-location': string; metadata: TableMetadata }
    return { metadataLocation: j['metadata-location'], metadata: j.metadata }
  }

  return {
    kind: 'rest',
    async load(id) {
      const r = await call('GET', `${nsPath(id)}/tables/${encodeURIComponent(id.name)}`)
      if (r.status === 404) return undefined
      if (r.status !== 200) throw new CatalogError(`load table: ${message(r)}`, r.status)
      return loaded(r)
    },
    async create(id, req) {
      const n = await call('POST', '/namespaces', { namespace: id.namespace, properties: {} })
      if (n.status !== 200 && n.status !== 409) throw new CatalogError(`create namespace: ${message(n)}`, n.status)
      const r = await call('POST', `${nsPath(id)}/tables`, {
        name: id.name,
        location: req.location,
        schema: req.schema,
        'partition-spec': req.spec,
        'write-order': { 'order-id': 0, fields: [] },
        'stage-create': false,
        properties: req.properties,
      })
      if (r.status === 409) return (await this.load(id))!
      if (r.status !== 200) throw new CatalogError(`create table: ${message(r)}`, r.status)
      return loaded(r)
    },
    async commit(id, _base, requirements, updates) {
      const r = await call('POST', `${nsPath(id)}/tables/${encodeURIComponent(id.name)}`, { identifier: id, requirements, updates })
      if (r.status === 409) throw new CommitConflictError(`commit refused: ${message(r)}`)
      if (r.status !== 200) throw new CatalogError(`commit: ${message(r)}`, r.status)
      return loaded(r)
    },
  }
}
