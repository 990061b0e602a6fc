import type { ReasonCode } from '@adc/schemas'
import { randomUUID } from 'node:crypto'
import { buildManifest, buildManifestList, entriesManifest, type DataFile, type ManifestEntry, type ManifestFile } from './manifest.js'
import { CommitConflictError, currentSchema, currentSnapshotId, defaultSpec, newSnapshotId, sameId, type Id, type Snapshot, type TableMetadata, type TableRequirement, type TableUpdate } from './metadata.js'
import { headSnapshot, snapshotReader } from './snapshots.js'
import type { LakeTable } from './table.js'
import type { LoadedTable } from './catalog.js'

/** A data file to remove is no longer in the table (another rewrite removed it first): plan again. */
export class RewriteConflictError extends Error {
  readonly reason: ReasonCode = 'lake_rewrite_conflict'
}

/** The table holds delete files (another engine's row-level deletes): rewriting data files under them is refused. */
export class RewriteUnsupportedError extends Error {
  readonly reason: ReasonCode = 'lake_rewrite_unsupported'
}

export interface RewritePlan {
  /** `replace`: the same rows in other files (compaction); `overwrite`: rows removed (erasure). */
  operation: 'replace' | 'overwrite'
  /** Locations of the live data files the snapshot removes. */
  removed: ReadonlySet<string>
  /** New data files (already written). */
  added: DataFile[]
  /** Snapshots to expire in the same commit, chosen against the base the commit lands on. */
  expire?: (m: TableMetadata) => Promise<Id[]>
}

export interface RewriteResult { snapshotId: Id; table: LoadedTable; expired: Id[]; base: TableMetadata }

/** A removed file's manifest entry: no column bounds kept (a removed file's values must not live on in metadata). */
const deletedEntry = (e: ManifestEntry, m: ManifestFile, snapshotId: Id): ManifestEntry => ({
  status: 2,
  snapshot_id: snapshotId,
  sequence_number: e.sequence_number ?? m.sequence_number,
  file_sequence_number: e.file_sequence_number ?? e.sequence_number ?? m.sequence_number,
  data_file: { content: e.data_file.content, file_path: e.data_file.file_path, file_format: e.data_file.file_format, partition: e.data_file.partition, record_count: e.data_file.record_count, file_size_in_bytes: e.data_file.file_size_in_bytes },
})

const existingEntry = (e: ManifestEntry, m: ManifestFile): ManifestEntry => ({
  status: 0,
  snapshot_id: e.snapshot_id ?? m.added_snapshot_id,
  sequence_number: e.sequence_number ?? m.sequence_number,
  file_sequence_number: e.file_sequence_number ?? e.sequence_number ?? m.sequence_number,
  data_file: e.data_file,
})

/**
 * Commits a snapshot that removes some data files and adds others (Iceberg's RewriteFiles /
 * OverwriteFiles): every manifest holding a removed file is rewritten with it as DELETED and the rest
 * EXISTING, the added files go in a new manifest as ADDED, other manifests are carried over. On a
 * conflict (a sink appended meanwhile) the table is re-read and the change re-applied on the new
 * head, so a concurrent append is never lost; if a file to remove is gone, RewriteConflictError.
 */
export async function commitRewrite(lake: LakeTable, plan: RewritePlan): Promise<RewriteResult> {
  const { io, catalog, ident } = lake
  let t = await lake.refresh()
  const snapshotId = newSnapshotId()
  const base = () => t.metadata.location.replace(/\/$/, '')
  const spec = defaultSpec(t.metadata)
  const added = plan.added.length > 0
    ? buildManifest({ location: `${base()}/metadata/${randomUUID()}-adc-m0.avro`, files: plan.added, snapshotId, schema: currentSchema(t.metadata), spec })
    : undefined
  if (added) await io.write(added.entry.manifest_path, added.bytes)
  for (let attempt = 1; ; attempt++) {
    const m = t.metadata
    const head = headSnapshot(m)
    if (!head) throw new RewriteConflictError('the table has no snapshot to rewrite')
    if (defaultSpec(m)['spec-id'] !== spec['spec-id']) throw new RewriteConflictError('the partition spec changed since the rewrite was planned')
    const reader = snapshotReader(io)
    const manifests = await reader.manifestList(head['manifest-list'])
    if (manifests.some((f) => f.content !== 0)) throw new RewriteUnsupportedError('the table has delete files; rewrite them away with the engine that wrote them first')
    const sequenceNumber = m['last-sequence-number'] + 1
    const list: ManifestFile[] = []
    const found = new Map<string, ManifestEntry>()
    for (const f of manifests) {
      const live = (await reader.entries(f.manifest_path)).filter((e) => e.status !== 2)
      if (!live.some((e) => plan.removed.has(e.data_file.file_path))) {
        list.push(f)
        continue
      }
      const records = live.map((e) => {
        if (!plan.removed.has(e.data_file.file_path)) return existingEntry(e, f)
        found.set(e.data_file.file_path, e)
        return deletedEntry(e, f, snapshotId)
      })
      const location = `${base()}/metadata/${randomUUID()}-adc-rewritten.avro`
      const rewritten = entriesManifest({ location, records, snapshotId, sequenceNumber, schema: currentSchema(m), spec })
      await io.write(location, rewritten.bytes)
      list.push(rewritten.entry)
    }
    if (found.size !== plan.removed.size) throw new RewriteConflictError(`${plan.removed.size - found.size} of the data files to rewrite are no longer in the table`)
    if (added) list.unshift({ ...added.entry, sequence_number: sequenceNumber, min_sequence_number: sequenceNumber })
    const parentId = currentSnapshotId(m)!
    const listLocation = `${base()}/metadata/snap-${snapshotId}-${attempt}-${randomUUID()}.avro`
    await io.write(listLocation, buildManifestList(list, { snapshotId, parentId, sequenceNumber }))
    const removedRows = [...found.values()].reduce((s, e) => s + Number(e.data_file.record_count), 0)
    const removedSize = [...found.values()].reduce((s, e) => s + Number(e.data_file.file_size_in_bytes), 0)
    const addedRows = plan.added.reduce((s, f) => s + f.recordCount, 0)
    const addedSize = plan.added.reduce((s, f) => s + f.sizeBytes, 0)
    const n = (k: string) => Number(head.summary[k] ?? 0)
    const snapshot: Snapshot = {
      'snapshot-id': snapshotId,
      'parent-snapshot-id': parentId,
      'sequence-number': sequenceNumber,
      'timestamp-ms': Date.now(),
      'manifest-list': listLocation,
      summary: {
        operation: plan.operation,
        'added-data-files': String(plan.added.length),
        'deleted-data-files': String(found.size),
        'added-records': String(addedRows),
        'deleted-records': String(removedRows),
        'added-files-size': String(addedSize),
        'removed-files-size': String(removedSize),
        'changed-partition-count': String(new Set([...plan.added.map((f) => f.partition.ts_hour), ...[...found.values()].map((e) => e.data_file.partition.ts_hour)]).size),
        'total-data-files': String(n('total-data-files') - found.size + plan.added.length),
        'total-records': String(n('total-records') - removedRows + addedRows),
        'total-files-size': String(n('total-files-size') - removedSize + addedSize),
        'total-delete-files': String(n('total-delete-files')),
        'total-position-deletes': String(n('total-position-deletes')),
        'total-equality-deletes': String(n('total-equality-deletes')),
      },
      'schema-id': m['current-schema-id'],
    }
    const expired = plan.expire ? (await plan.expire(m)).filter((id) => !sameId(id, snapshotId)) : []
    const requirements: TableRequirement[] = [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': parentId }]
    const updates: TableUpdate[] = [
      { action: 'add-snapshot', snapshot },
      { action: 'set-snapshot-ref', 'ref-name': 'main', type: 'branch', 'snapshot-id': snapshotId },
      ...(expired.length > 0 ? [{ action: 'remove-snapshots' as const, 'snapshot-ids': expired }] : []),
    ]
    try {
      const table = await catalog.commit(ident, t, requirements, updates)
      await lake.refresh()
      return { snapshotId, table, expired, base: m }
    } catch (err) {
      // Lost answer or conflict: reload; our snapshot id tells whether the commit landed.
      const loaded = await lake.refresh()
      if ((loaded.metadata.snapshots ?? []).some((s) => sameId(s['snapshot-id'], snapshotId))) return { snapshotId, table: loaded, expired, base: m }
      await io.delete(listLocation).catch(() => undefined)
      if (!(err instanceof CommitConflictError) || attempt >= lake.maxAttempts) throw err
      t = loaded
    }
  }
}
