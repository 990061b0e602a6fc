import { CommitConflictError, currentSnapshotId, sameId, type Id, type TableMetadata } from './metadata.js'
import { parseJson } from './json.js'
import { headSnapshot, snapshotReader } from './snapshots.js'
import { expiredSnapshots, type LakeTable } from './table.js'

/**
 * Expires snapshots as the table's properties say (`history.expire.max-snapshot-age-ms`,
 * `history.expire.min-snapshots-to-keep`; `properties` override them for this call), or the ones
 * `choose` picks, in one catalog commit (retried on conflicts). Their files stay until cleanUpTable.
 */
export async function expireSnapshots(lake: LakeTable, opts: { now?: number; properties?: Record<string, string>; choose?: (m: TableMetadata) => Promise<Id[]> } = {}): Promise<Id[]> {
  for (let attempt = 1; ; attempt++) {
    const t = await lake.refresh()
    const m = t.metadata
    const ids = opts.choose ? await opts.choose(m) : expiredSnapshots({ ...m, properties: { ...m.properties, ...opts.properties } }, opts.now ?? Date.now(), 0)
    const head = currentSnapshotId(m)
    const expire = ids.filter((id) => !sameId(id, head))
    if (expire.length === 0) return []
    try {
      await lake.catalog.commit(lake.ident, t, [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': head }], [{ action: 'remove-snapshots', 'snapshot-ids': expire }])
      await lake.refresh()
      return expire
    } catch (err) {
      if (!(err instanceof CommitConflictError) || attempt >= lake.maxAttempts) throw err
    }
  }
}

export interface CleanUpOptions {
  /**
   * Safety age: a file is deleted only when it was last written longer ago than this (a writer's
   * files not yet committed are younger), and files of every snapshot that was the table's current
   * one within this time are kept (a reader that planned its scan on it is still reading them).
   */
  minAgeMs: number
  now?: number
}

export interface CleanUpResult {
  deleted: string[]
  /** Objects kept although unreachable, because they are younger than the safety age or were recently current. */
  kept: number
}

/**
 * Deletes the table's data files, manifests, manifest lists and metadata files that no remaining
 * snapshot reaches (expired snapshots' files, files a rewrite replaced, a crashed writer's leftovers),
 * under the table's `data/` and `metadata/` on `file://` or `s3://` alike. The current metadata file,
 * those in its metadata log and version-hint.text always stay.
 */
export async function cleanUpTable(lake: LakeTable, opts: CleanUpOptions): Promise<CleanUpResult> {
  const now = opts.now ?? Date.now()
  const cutoff = now - opts.minAgeMs
  const t = await lake.refresh()
  const m = t.metadata
  const reader = snapshotReader(lake.io)
  const keep = await reader.reachable(m)
  const root = m.location.replace(/\/$/, '')
  keep.add(t.metadataLocation)
  keep.add(`${root}/metadata/version-hint.text`)
  const log = [...(m['metadata-log'] ?? [])].sort((a, b) => a['timestamp-ms'] - b['timestamp-ms'])
  for (const e of log) keep.add(e['metadata-file'])

  // Metadata files that were current within the safety age: keep what their head reached.
  let protectData = true
  // Each logged file was current from its time until the next one's (the last until the current file's).
  const recent = log.filter((_, i) => (log[i + 1]?.['timestamp-ms'] ?? m['last-updated-ms']) >= cutoff)
  for (const e of recent) {
    let old: TableMetadata
    try {
      old = parseJson<TableMetadata>((await lake.io.read(e['metadata-file'])).toString())
    } catch {
      continue // deleted past write.metadata.previous-versions-max: older than anything a reader holds
    }
    const head = headSnapshot(old)
    if (!head || (m.snapshots ?? []).some((s) => sameId(s['snapshot-id'], head['snapshot-id']))) continue
    try {
      for (const x of await reader.reachable(old, [head])) keep.add(x)
    } catch {
      // Its manifest list is gone: what it reached is unknown, so no data file is deleted this run.
      protectData = false
    }
  }

  const objects = [...(await lake.io.list(`${root}/data/`)), ...(await lake.io.list(`${root}/metadata/`))]
  const deleted: string[] = []
  let kept = 0
  for (const o of objects) {
    if (keep.has(o.location)) continue
    if (o.modifiedMs >= cutoff || (!protectData && o.location.startsWith(`${root}/data/`))) {
      kept++
      continue
    }
    await lake.io.delete(o.location)
    deleted.push(o.location)
  }
  return { deleted: deleted.sort(), kept }
}
