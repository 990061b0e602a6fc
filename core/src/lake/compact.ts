import { randomUUID } from 'node:crypto'
import type { DataFile, ManifestEntry } from './manifest.js'
import { currentSchema, defaultSpec, type Id } from './metadata.js'
import { encodeParquet, fileMetrics, parquetColumns, parquetSource, unionSelect } from './parquet.js'
import { commitRewrite, RewriteConflictError } from './rewrite.js'
import { headSnapshot, snapshotReader } from './snapshots.js'
import { expiredSnapshots, hourName, type LakeTable } from './table.js'

export interface CompactionOptions {
  /** A partition is compacted once it has at least this many small data files. */
  minFiles: number
  /** Data files below this size are small. */
  smallFileBytes: number
  /** Small files are grouped up to about this many bytes per new file. */
  targetFileBytes: number
  /** Hours that ended less than this long ago are left alone (the sink still appends to them). @default 3600000 */
  settledMs?: number
  now?: number
}

export interface CompactionResult { partitions: number; removedFiles: number; addedFiles: number; snapshotId?: Id }

/** Groups files (smallest first) into bins of about `target` bytes; only bins of two or more files are worth rewriting. */
export function binPack<T extends { size: number }>(files: T[], target: number): T[][] {
  const bins: T[][] = []
  let bin: T[] = []
  let size = 0
  for (const f of [...files].sort((a, b) => a.size - b.size)) {
    if (bin.length > 0 && size + f.size > target) {
      bins.push(bin)
      bin = []
      size = 0
    }
    bin.push(f)
    size += f.size
  }
  if (bin.length > 0) bins.push(bin)
  return bins.filter((b) => b.length >= 2)
}

/**
 * Data file compaction: in each settled hour partition with at least `minFiles` small data files,
 * rewrites them (read and written by the engine) into one file per ~`targetFileBytes`, committed as
 * one Iceberg `replace` snapshot. Rows, values and sequence of events are unchanged; readers see the
 * same table through fewer files. Conflicts with concurrent appends are re-applied on the new head
 * (commitRewrite); if another compaction or an erasure removed one of the files first, the files
 * written here are deleted and the next run plans again.
 */
export async function compactTable(lake: LakeTable, options: CompactionOptions): Promise<CompactionResult> {
  const now = options.now ?? Date.now()
  const settled = options.settledMs ?? 3_600_000
  const t = await lake.refresh()
  const head = headSnapshot(t.metadata)
  if (!head) return { partitions: 0, removedFiles: 0, addedFiles: 0 }
  const spec = defaultSpec(t.metadata)
  if (spec.fields.length !== 1 || spec.fields[0]!.name !== 'ts_hour') return { partitions: 0, removedFiles: 0, addedFiles: 0 }
  const reader = snapshotReader(lake.io)
  const live = await reader.live(head)
  if (live.some(({ manifest }) => manifest.content !== 0)) return { partitions: 0, removedFiles: 0, addedFiles: 0 }
  const byHour = new Map<number, { size: number; entry: ManifestEntry }[]>()
  for (const { entry } of live) {
    const hour = entry.data_file.partition.ts_hour
    const size = Number(entry.data_file.file_size_in_bytes)
    if (typeof hour !== 'number' || entry.data_file.content !== 0 || entry.data_file.file_format.toUpperCase() !== 'PARQUET' || size >= options.smallFileBytes) continue
    if ((hour + 1) * 3_600_000 + settled > now) continue
    const list = byHour.get(hour)
    if (list) list.push({ size, entry })
    else byHour.set(hour, [{ size, entry }])
  }
  const groups = [...byHour].filter(([, files]) => files.length >= options.minFiles).sort((a, b) => a[0] - b[0])
  if (groups.length === 0) return { partitions: 0, removedFiles: 0, addedFiles: 0 }

  const fields = currentSchema(t.metadata).fields
  const order = fields.map((f) => f.name)
  const removed = new Set<string>()
  const added: DataFile[] = []
  try {
    for (const [hour, files] of groups) {
      for (const bin of binPack(files, options.targetFileBytes)) {
        const inputs = await Promise.all(bin.map(async ({ entry }) => {
          const source = parquetSource(entry.data_file.file_path, lake.s3)
          return { source, columns: await parquetColumns(lake.client, source) }
        }))
        const { select, columns } = unionSelect(inputs, order)
        const body = await encodeParquet(lake.client, select)
        const path = `${t.metadata.location.replace(/\/$/, '')}/data/ts_hour=${hourName(hour)}/${randomUUID()}-compacted.parquet`
        await lake.io.write(path, body)
        const { rows, metrics } = await fileMetrics(lake.client, parquetSource(path, lake.s3), columns, fields)
        const expected = bin.reduce((s, f) => s + Number(f.entry.data_file.record_count), 0)
        added.push({ path, recordCount: rows, sizeBytes: body.length, partition: { ts_hour: hour }, metrics })
        if (rows !== expected) throw new RangeError(`compaction of ${bin.length} files in ${hourName(hour)} read ${rows} rows, their manifests say ${expected}`)
        for (const f of bin) removed.add(f.entry.data_file.file_path)
      }
    }
    if (added.length === 0) return { partitions: 0, removedFiles: 0, addedFiles: 0 }
    const r = await commitRewrite(lake, { operation: 'replace', removed, added, expire: async (m) => expiredSnapshots(m, Date.now(), 1) })
    await deleteManifestLists(lake, r.base, r.expired)
    return { partitions: new Set(added.map((f) => f.partition.ts_hour)).size, removedFiles: removed.size, addedFiles: added.length, snapshotId: r.snapshotId }
  } catch (err) {
    // Nothing committed: the files written here are referenced by nothing.
    await Promise.all(added.map((f) => lake.io.delete(f.path).catch(() => undefined)))
    if (err instanceof RewriteConflictError) return { partitions: 0, removedFiles: 0, addedFiles: 0 }
    throw err
  }
}

/** After a commit expired snapshots: their manifest lists (as the append path does). */
async function deleteManifestLists(lake: LakeTable, base: { snapshots?: { 'snapshot-id': Id; 'manifest-list': string }[] }, expired: Id[]): Promise<void> {
  const gone = new Set(expired.map(String))
  const lists = (base.snapshots ?? []).filter((s) => gone.has(String(s['snapshot-id']))).map((s) => s['manifest-list'])
  await Promise.all(lists.map((l) => lake.io.delete(l).catch(() => undefined)))
}
