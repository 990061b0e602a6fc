import type { ReasonCode } from '@adc/schemas'
import { randomUUID, randomInt } from 'node:crypto'
import type { IcebergSchema } from './schema.js'

/** Snapshot ids: ours fit a JS number; other engines' may use 63 bits (read as bigint). */
export type Id = number | bigint

export interface PartitionField { 'source-id': number; 'field-id': number; name: string; transform: string }
export interface PartitionSpec { 'spec-id': number; fields: PartitionField[] }

export interface Snapshot {
  'snapshot-id': Id
  'parent-snapshot-id'?: Id
  'sequence-number': number
  'timestamp-ms': number
  'manifest-list': string
  summary: Record<string, string> & { operation: string }
  'schema-id'?: number
}

/** Iceberg v2 table metadata (the fields this writer reads; others pass through unchanged). */
export interface TableMetadata {
  'format-version': 2
  'table-uuid': string
  location: string
  'last-sequence-number': number
  'last-updated-ms': number
  'last-column-id': number
  'current-schema-id': number
  schemas: IcebergSchema[]
  'default-spec-id': number
  'partition-specs': PartitionSpec[]
  'last-partition-id': number
  'default-sort-order-id': number
  'sort-orders': unknown[]
  properties: Record<string, string>
  'current-snapshot-id'?: Id | null
  snapshots?: Snapshot[]
  'snapshot-log'?: { 'snapshot-id': Id; 'timestamp-ms': number }[]
  'metadata-log'?: { 'metadata-file': string; 'timestamp-ms': number }[]
  refs?: Record<string, { 'snapshot-id': Id; type: 'branch' | 'tag' }>
  [key: string]: unknown
}

/** REST-catalog-shaped table updates and requirements (the same shapes drive the local catalog). */
export type TableUpdate =
  | { action: 'add-snapshot'; snapshot: Snapshot }
  | { action: 'set-snapshot-ref'; 'ref-name': string; type: 'branch'; 'snapshot-id': Id }
  | { action: 'add-schema'; schema: IcebergSchema; 'last-column-id': number }
  | { action: 'set-current-schema'; 'schema-id': number }
  | { action: 'set-properties'; updates: Record<string, string> }
  | { action: 'remove-snapshots'; 'snapshot-ids': Id[] }

export type TableRequirement =
  | { type: 'assert-ref-snapshot-id'; ref: string; 'snapshot-id': Id | null }
  | { type: 'assert-current-schema-id'; 'current-schema-id': number }
  | { type: 'assert-table-uuid'; uuid: string }

export const sameId = (a: Id | null | undefined, b: Id | null | undefined): boolean => (a ?? null) === null ? (b ?? null) === null : b != null && String(a) === String(b)

/** A fresh positive snapshot id (53 bits, so it round-trips through every JSON reader). */
export const newSnapshotId = (): number => randomInt(1, 2 ** 47) * 64 + randomInt(0, 64)

export function currentSchema(m: TableMetadata): IcebergSchema {
  const s = m.schemas.find((x) => x['schema-id'] === m['current-schema-id'])
  if (!s) throw new RangeError(`table metadata has no current schema ${m['current-schema-id']}`)
  return s
}

export function defaultSpec(m: TableMetadata): PartitionSpec {
  const s = m['partition-specs'].find((x) => x['spec-id'] === m['default-spec-id'])
  if (!s) throw new RangeError(`table metadata has no default partition spec ${m['default-spec-id']}`)
  return s
}

export function currentSnapshotId(m: TableMetadata): Id | null {
  return m.refs?.main?.['snapshot-id'] ?? m['current-snapshot-id'] ?? null
}

/** The first metadata of a table: one schema, the hour(ts) spec, no snapshot. */
export function newTableMetadata(location: string, schema: IcebergSchema, lastColumnId: number, spec: PartitionSpec, properties: Record<string, string>): TableMetadata {
  return {
    'format-version': 2,
    'table-uuid': randomUUID(),
    location,
    'last-sequence-number': 0,
    'last-updated-ms': Date.now(),
    'last-column-id': lastColumnId,
    'current-schema-id': schema['schema-id'],
    schemas: [schema],
    'default-spec-id': spec['spec-id'],
    'partition-specs': [spec],
    'last-partition-id': Math.max(999, ...spec.fields.map((f) => f['field-id'])),
    'default-sort-order-id': 0,
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    properties,
    'current-snapshot-id': null,
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
    refs: {},
  }
}

export class CommitConflictError extends Error {
  readonly reason: ReasonCode = 'lake_commit_conflict'
}

/** Checks `requirements` against `base`; throws CommitConflictError when one does not hold. */
export function checkRequirements(base: TableMetadata, requirements: TableRequirement[]): void {
  for (const r of requirements) {
    if (r.type === 'assert-ref-snapshot-id' && !sameId(base.refs?.[r.ref]?.['snapshot-id'] ?? null, r['snapshot-id'])) {
      throw new CommitConflictError(`branch ${r.ref} moved since the commit was prepared`)
    }
    if (r.type === 'assert-current-schema-id' && base['current-schema-id'] !== r['current-schema-id']) throw new CommitConflictError('schema changed since the commit was prepared')
    if (r.type === 'assert-table-uuid' && base['table-uuid'] !== r.uuid) throw new CommitConflictError('table was replaced')
  }
}

/** Applies updates as a catalog does (the local catalog; a REST catalog does this server-side). */
export function applyUpdates(base: TableMetadata, updates: TableUpdate[], previousLocation: string | undefined, now = Date.now()): TableMetadata {
  const m: TableMetadata = structuredClone(base)
  m['last-updated-ms'] = now
  if (previousLocation) m['metadata-log'] = [...(m['metadata-log'] ?? []), { 'metadata-file': previousLocation, 'timestamp-ms': base['last-updated-ms'] }]
  for (const u of updates) {
    switch (u.action) {
      case 'add-snapshot':
        m.snapshots = [...(m.snapshots ?? []), u.snapshot]
        m['last-sequence-number'] = Math.max(m['last-sequence-number'], u.snapshot['sequence-number'])
        break
      case 'set-snapshot-ref':
        m.refs = { ...(m.refs ?? {}), [u['ref-name']]: { 'snapshot-id': u['snapshot-id'], type: u.type } }
        if (u['ref-name'] === 'main') {
          m['current-snapshot-id'] = u['snapshot-id']
          m['snapshot-log'] = [...(m['snapshot-log'] ?? []), { 'snapshot-id': u['snapshot-id'], 'timestamp-ms': now }]
        }
        break
      case 'add-schema':
        m.schemas = [...m.schemas, u.schema]
        m['last-column-id'] = Math.max(m['last-column-id'], u['last-column-id'])
        break
      case 'set-current-schema':
        m['current-schema-id'] = u['schema-id'] === -1 ? m.schemas[m.schemas.length - 1]!['schema-id'] : u['schema-id']
        break
      case 'set-properties':
        m.properties = { ...m.properties, ...u.updates }
        break
      case 'remove-snapshots': {
        const gone = new Set(u['snapshot-ids'].map(String))
        m.snapshots = (m.snapshots ?? []).filter((s) => !gone.has(String(s['snapshot-id'])))
        m['snapshot-log'] = (m['snapshot-log'] ?? []).filter((s) => !gone.has(String(s['snapshot-id'])))
        break
      }
    }
  }
  return m
}
