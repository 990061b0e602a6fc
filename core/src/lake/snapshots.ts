import { readAvroFile } from './avro.js'
import type { FileIO } from './io.js'
import { normaliseManifestFile, type ManifestEntry, type ManifestFile } from './manifest.js'
import { currentSnapshotId, sameId, type Snapshot, type TableMetadata } from './metadata.js'

/** Reads manifest lists and manifests, each object once per reader (they never change once written). */
export function snapshotReader(io: FileIO) {
  const lists = new Map<string, Promise<ManifestFile[]>>()
  const manifests = new Map<string, Promise<ManifestEntry[]>>()
  const manifestList = (location: string) => {
    let p = lists.get(location)
    if (!p) lists.set(location, (p = io.read(location).then((b) => readAvroFile(b).records.map(normaliseManifestFile))))
    return p
  }
  const entries = (location: string) => {
    let p = manifests.get(location)
    if (!p) manifests.set(location, (p = io.read(location).then((b) => readAvroFile(b).records as unknown as ManifestEntry[])))
    return p
  }

  /** Every object a snapshot reaches: its manifest list, manifests, and live data and delete files. */
  async function reach(snapshot: Snapshot): Promise<{ manifestList: string; manifests: string[]; files: string[] }> {
    const list = await manifestList(snapshot['manifest-list'])
    const files: string[] = []
    for (const f of list) for (const e of await entries(f.manifest_path)) if (e.status !== 2) files.push(e.data_file.file_path)
    return { manifestList: snapshot['manifest-list'], manifests: list.map((f) => f.manifest_path), files }
  }

  return {
    manifestList,
    entries,
    reach,
    /** The live data files of a snapshot, with the manifest-list record of the manifest that holds each. */
    async live(snapshot: Snapshot): Promise<{ manifest: ManifestFile; entry: ManifestEntry }[]> {
      const out: { manifest: ManifestFile; entry: ManifestEntry }[] = []
      for (const f of await manifestList(snapshot['manifest-list'])) for (const e of await entries(f.manifest_path)) if (e.status !== 2) out.push({ manifest: f, entry: e })
      return out
    },
    /** Every object reachable from these snapshots (default: all of the table's). */
    async reachable(m: TableMetadata, snapshots: Snapshot[] = m.snapshots ?? []): Promise<Set<string>> {
      const out = new Set<string>()
      for (const s of snapshots) {
        const r = await reach(s)
        out.add(r.manifestList)
        for (const x of [...r.manifests, ...r.files]) out.add(x)
      }
      return out
    },
  }
}

export type SnapshotReader = ReturnType<typeof snapshotReader>

/** The snapshot `main` points at, if any. */
export function headSnapshot(m: TableMetadata): Snapshot | undefined {
  const id = currentSnapshotId(m)
  if (id === null) return undefined
  const snap = (m.snapshots ?? []).find((s) => sameId(s['snapshot-id'], id))
  if (!snap) throw new RangeError(`current snapshot ${id} is missing from the table metadata`)
  return snap
}
