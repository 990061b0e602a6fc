/**
 * Test support: drives one partition's store as its owner does with the state changelog on
 * (a claim, then each batch's delta appended before its commit) and rebuilds it as a new owner
 * would, from the folded deltas and from a snapshot of that copy. Imported by tests only.
 */
import type { LogRecord } from '../log/log.js'
import { ChangelogFold, claimRecord, deltaRecords, snapshotRecords } from '../state/changelog.js'
import { PartitionStore, type StateEntry } from '../state/partition-store.js'

const OWNER = 'A'

export interface ChangelogReplay {
  /** Runs `change` on the store, appends its delta up to offset `max` and commits. */
  batch(max: number, change: () => void): Promise<void>
  /**
   * Two copies in fresh directories: one restored from the folded deltas, one from a snapshot of
   * that copy (the changelog truncated before it).
   */
  rebuilt(freshDir: () => string): Promise<[fromDeltas: PartitionStore, fromSnapshot: PartitionStore]>
}

export function changelogReplay(store: PartitionStore, partition = 0): ChangelogReplay {
  const records: LogRecord[] = []
  let offset = 0
  const append = (rs: Array<{ key: string; value: string }>): void => {
    for (const r of rs) records.push({ topic: 'cl', partition, offset: offset++, key: r.key, value: r.value, timestamp: 0 })
  }
  const fold = (rs: Iterable<LogRecord>) => {
    const f = new ChangelogFold({ applied: -1, intent: undefined, position: { next: 0 } })
    for (const r of rs) f.add(r)
    return f.result()
  }
  append([claimRecord(partition, OWNER)])
  return {
    async batch(max, change) {
      change()
      append(deltaRecords(partition, OWNER, max, store.pendingEntries(max)))
      await store.commit(max)
    },
    async rebuilt(freshDir) {
      const restoreInto = async (entries: Iterable<StateEntry>, applied: number): Promise<PartitionStore> => {
        const s = PartitionStore.open(freshDir(), partition)
        await s.restore({ entries, applied, intent: undefined, changelog: { next: offset } })
        return s
      }
      const deltas = fold(records)
      const fromDeltas = await restoreInto(deltas.entries, deltas.applied)
      let n = offset
      const snapshot = fold(snapshotRecords(partition, OWNER, deltas.applied, fromDeltas.entries())
        .map((r) => ({ topic: 'cl', partition, offset: n++, key: r.key, value: r.value, timestamp: 0 })))
      return [fromDeltas, await restoreInto(snapshot.entries, deltas.applied)]
    },
  }
}
