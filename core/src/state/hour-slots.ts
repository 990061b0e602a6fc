import type { Database, RootDatabase } from 'lmdb'

/**
 * Hour-bucketed binary databases (the delivery index, the impression index) spread their hours
 * over a ring of named databases, `<name>.<hour mod HOUR_SLOTS>`, each key starting with its hour
 * (u32 BE). An hour that holds its database alone is dropped by clearing that database, one
 * instruction of the batch's write transaction, so LMDB frees its pages without visiting each key
 * (deleting key by key cost 1.3–1.9 µs of the processor's CPU per event in the steady state, per
 * index); an hour that shares its database with another kept hour is deleted by its key range.
 * Live hours span about a day, so with 32 slots two share a database only when a client's clock
 * or a watermark jumped ahead.
 */
export const HOUR_SLOTS = 32

/** An hour, the unit both indexes bucket by. */
export const HOUR_MS = 3_600_000

/** Named databases of a partition environment besides the hour slots (delivery index, burst counters). */
const OTHER_DBS = 4
/** The `maxDbs` a partition environment opens with: two indexes' slots and the other databases. */
export const PARTITION_MAX_DBS = 2 * HOUR_SLOTS + OTHER_DBS

export function openHourSlots(root: RootDatabase, name: string): Array<Database<Buffer, Buffer>> {
  return Array.from({ length: HOUR_SLOTS }, (_, i) => root.openDB<Buffer, Buffer>({ name: `${name}.${i}`, keyEncoding: 'binary', encoding: 'binary', compression: false }))
}

/** Whether a key of the root database names one of `name`'s slot databases. */
export const isSlotOf = (name: string, k: unknown): boolean => typeof k === 'string' && k.startsWith(`${name}.`)

/** The first key of `hour`'s range. */
export function bucketStart(hour: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(hour, 0)
  return b
}

/**
 * Deletes `hour` from its slot (inside a write transaction): clears the slot when none of `kept`
 * (the hours committed, less those dropped with it, `going`) shares it, else deletes its key range.
 * `cleared`: slots cleared in this transaction already (nothing more to do for their hours).
 */
export function dropHour(slots: ReadonlyArray<Database<Buffer, Buffer>>, hour: number, kept: Iterable<number>, going: ReadonlySet<number>, cleared: Set<number>): void {
  const slot = hour % HOUR_SLOTS
  if (cleared.has(slot)) return
  let shared = false
  for (const h of kept) if (h !== hour && h % HOUR_SLOTS === slot && !going.has(h)) shared = true
  const db = slots[slot]!
  if (!shared) {
    void db.clearAsync()
    cleared.add(slot)
  } else for (const k of db.getKeys({ start: bucketStart(hour), end: bucketStart(hour + 1) })) void db.remove(k)
}

/** The hours the slots hold (inside a write transaction, its writes too), oldest first: one short range read per hour. */
export function heldHours(slots: ReadonlyArray<Database<Buffer, Buffer>>, below = 0xffff_ffff): number[] {
  const out: number[] = []
  for (const db of slots) {
    let start = bucketStart(0)
    for (;;) {
      let next: number | undefined
      for (const k of db.getKeys({ start, limit: 1 })) next = k.readUInt32BE(0)
      if (next === undefined || next >= below) break
      out.push(next)
      start = bucketStart(next + 1)
    }
  }
  return out.sort((a, b) => a - b)
}

/** Entries of `dbs` and the bytes of their B-tree pages, summed (bytes-per-key measurements). */
export function treeStats(dbs: Iterable<Database<Buffer, Buffer>>): { entries: number; usedBytes: number } {
  let entries = 0
  let usedBytes = 0
  for (const db of dbs) {
    const st = db.getStats() as { pageSize: number; entryCount: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
    entries += st.entryCount
    usedBytes += st.pageSize * (st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages)
  }
  return { entries, usedBytes }
}
