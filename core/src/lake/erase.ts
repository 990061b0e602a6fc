import { randomUUID } from 'node:crypto'
import type { DataFile, ManifestEntry } from './manifest.js'
import { currentSchema, sameId, type Id, type Snapshot, type TableMetadata } from './metadata.js'
import { countWhere, encodeParquet, fileMetrics, parquetColumns, parquetSource, unionSelect } from './parquet.js'
import { commitRewrite, RewriteConflictError } from './rewrite.js'
import { headSnapshot, snapshotReader, type SnapshotReader } from './snapshots.js'
import { expireSnapshots } from './cleanup.js'
import { hourName, type LakeTable } from './table.js'

/**
 * Rows to erase: one publisher's rows whose `column` (user_key or ip_hash) equals `value`, or whose
 * SHA-256 (hex) is `sha256` (a retry from the audit row, which keeps no identifier; no column bounds prune then).
 */
export type LakeSubject =
  | { publisherId: string; column: 'user_key' | 'ip_hash'; value: string; sha256?: undefined }
  | { publisherId: string; column: 'user_key' | 'ip_hash'; sha256: string; value?: undefined }

export interface LakeErasure {
  /** `pending`: a file with the rows is still reachable (a tag or branch other than main holds its snapshot). */
  status: 'done' | 'pending'
  rows: number
  rewrittenFiles: number
  deletedFiles: number
}

/** Whether a string column's manifest bounds allow `value` (the lower bound may be a truncated prefix; no upper bound when truncated). */
function mayHold(e: ManifestEntry, fieldId: number | undefined, value: string): boolean {
  if (fieldId === undefined) return true
  const v = Buffer.from(value)
  const lo = e.data_file.lower_bounds?.find((b) => b.key === fieldId)?.value
  const hi = e.data_file.upper_bounds?.find((b) => b.key === fieldId)?.value
  if (lo && Buffer.compare(v, lo) < 0) return false
  if (hi && Buffer.compare(v, hi) > 0) return false
  return true
}

/** Snapshots that reach any of `files`, but none a tag or branch other than main holds (those stay: the erasure is then pending). */
async function snapshotsReaching(reader: SnapshotReader, m: TableMetadata, files: ReadonlySet<string>): Promise<Id[]> {
  const held = new Set(Object.entries(m.refs ?? {}).filter(([name]) => name !== 'main').map(([, r]) => String(r['snapshot-id'])))
  const out: Id[] = []
  for (const s of m.snapshots ?? []) {
    if (!held.has(String(s['snapshot-id'])) && (await reader.reach(s)).files.some((f) => files.has(f))) out.push(s['snapshot-id'])
  }
  return out
}

/**
 * Erases a subject's rows from the lake for good: data files of the current snapshot holding them
 * are rewritten without them (one `overwrite` snapshot), every snapshot that still reaches a file
 * with them expires in the same commit, and those files, and the manifests and manifest lists that
 * named them (their column bounds may hold the subject's values), are deleted from storage at once:
 * no safety age, a privacy request outranks a reader mid-scan. Data files no snapshot reaches (left
 * by a crash, or awaiting clean-up) older than `orphanMinAgeMs` are searched and deleted the same way.
 */
export async function eraseFromLake(lake: LakeTable, subject: LakeSubject, opts: { orphanMinAgeMs?: number; now?: number } = {}): Promise<LakeErasure> {
  const where = subject.value !== undefined
    ? `publisher_id = {publisher:String} AND ${subject.column} = {value:String}`
    : `publisher_id = {publisher:String} AND lower(hex(SHA256(${subject.column}))) = {sha:String}`
  const params = subject.value !== undefined ? { publisher: subject.publisherId, value: subject.value } : { publisher: subject.publisherId, sha: subject.sha256.toLowerCase() }
  const reader = snapshotReader(lake.io)
  const holds = new Map<string, boolean>()
  /** Whether a data file holds the subject's rows (engine-read; a file without the columns holds none). */
  const check = async (location: string): Promise<boolean> => {
    let r = holds.get(location)
    if (r === undefined) {
      const source = parquetSource(location, lake.s3)
      const names = new Set((await parquetColumns(lake.client, source)).map((c) => c.name))
      r = names.has('publisher_id') && names.has(subject.column) && (await countWhere(lake.client, source, where, params)) > 0
      holds.set(location, r)
    }
    return r
  }

  for (let attempt = 1; ; attempt++) {
    const t = await lake.refresh()
    const m = t.metadata
    const fields = currentSchema(m).fields
    const ids = { publisher: fields.find((f) => f.name === 'publisher_id')?.id, column: fields.find((f) => f.name === subject.column)?.id }
    const head = headSnapshot(m)
    const headFiles = new Map<string, ManifestEntry>()
    if (head) for (const { entry } of await reader.live(head)) headFiles.set(entry.data_file.file_path, entry)
    // Every data file any snapshot reaches, pruned by bounds, then read.
    const all = new Map<string, ManifestEntry>()
    for (const s of m.snapshots ?? []) {
      for (const { entry } of await reader.live(s)) all.set(entry.data_file.file_path, entry)
    }
    const hit = new Set<string>()
    for (const [path, e] of all) {
      if (e.data_file.content !== 0 || !mayHold(e, ids.publisher, subject.publisherId)) continue
      if (subject.value !== undefined && !mayHold(e, ids.column, subject.value)) continue
      if (await check(path)) hit.add(path)
    }
    const inHead = [...hit].filter((p) => headFiles.has(p))
    let rows = 0
    const added: DataFile[] = []
    const before = { snapshots: [...(m.snapshots ?? [])] as Snapshot[] }
    try {
      if (inHead.length > 0) {
        for (const path of inHead) {
          const e = headFiles.get(path)!
          const source = parquetSource(path, lake.s3)
          const columns = await parquetColumns(lake.client, source)
          const gone = await countWhere(lake.client, source, where, params)
          rows += gone
          const keepCount = Number(e.data_file.record_count) - gone
          if (keepCount === 0) continue
          const { select, columns: out } = unionSelect([{ source, columns }], fields.map((f) => f.name), `NOT (${where})`)
          const body = await encodeParquet(lake.client, select, params)
          const hour = e.data_file.partition.ts_hour
          const dir = typeof hour === 'number' ? `ts_hour=${hourName(hour)}` : 'rewritten'
          const location = `${m.location.replace(/\/$/, '')}/data/${dir}/${randomUUID()}-rewritten.parquet`
          await lake.io.write(location, body)
          const { rows: n, metrics } = await fileMetrics(lake.client, parquetSource(location, lake.s3), out, fields)
          if (n !== keepCount) throw new RangeError(`erasure rewrite of ${path} kept ${n} rows, expected ${keepCount}`)
          added.push({ path: location, recordCount: n, sizeBytes: body.length, partition: e.data_file.partition as Record<string, number>, metrics })
        }
        await commitRewrite(lake, { operation: 'overwrite', removed: new Set(inHead), added, expire: (base) => snapshotsReaching(reader, base, hit) })
      } else if (hit.size > 0) {
        await expireSnapshots(lake, { choose: (base) => snapshotsReaching(reader, base, hit) })
      }
    } catch (err) {
      await Promise.all(added.map((f) => lake.io.delete(f.path).catch(() => undefined)))
      if (err instanceof RewriteConflictError && attempt < lake.maxAttempts) continue
      throw err
    }

    // Delete what no remaining snapshot reaches: the files with the rows, and the metadata that named them.
    const after = await lake.refresh()
    const still = await snapshotReader(lake.io).reachable(after.metadata)
    const named = new Set<string>()
    for (const s of before.snapshots) {
      if ((after.metadata.snapshots ?? []).some((x) => sameId(x['snapshot-id'], s['snapshot-id']))) continue
      const r = await reader.reach(s)
      named.add(r.manifestList)
      for (const x of r.manifests) named.add(x)
    }
    let deletedFiles = 0
    for (const x of [...hit, ...named]) {
      if (still.has(x)) continue
      await lake.io.delete(x)
      if (hit.has(x)) deletedFiles++
    }
    // Unreferenced data files (a crashed writer's, or awaiting clean-up) with the rows.
    const cutoff = (opts.now ?? Date.now()) - (opts.orphanMinAgeMs ?? 3_600_000)
    for (const o of await lake.io.list(`${after.metadata.location.replace(/\/$/, '')}/data/`)) {
      if (still.has(o.location) || hit.has(o.location) || o.modifiedMs >= cutoff || !o.location.endsWith('.parquet')) continue
      if (await check(o.location).catch(() => false)) {
        await lake.io.delete(o.location)
        deletedFiles++
      }
    }
    return { status: [...hit].some((p) => still.has(p)) ? 'pending' : 'done', rows, rewrittenFiles: inHead.length, deletedFiles }
  }
}
