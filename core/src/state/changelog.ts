import type { LogRecord, ProducerRecord } from '../log/log.js'
import { ENTRY_FORMAT, StateFormatError, type BatchIntent, type ChangelogPosition, type StateEntry } from './partition-store.js'

/**
 * The state changelog: one record stream per log partition (changelog partition p holds the state
 * of source partition p), so a partition's dedupe and join state can move to another processor.
 * Records are JSON; every one names its writer (`o`, a random id per ownership, i.e. per claim):
 *
 * - `claim`  {o}: a processor took the partition; records of any earlier owner that come after it
 *            are ignored (fencing: a processor that lost the partition but is still finishing a
 *            batch cannot change the state any more).
 * - `intent` {o, min, max}: the offset range of the batch about to be written to the sinks.
 * - `part`   {o, max, i, e}: a chunk of the batch's state changes (`e`: `[key, value]` or `[key]`).
 * - `delta`  {o, max, n}: the batch ending at offset `max` committed its state: its `n` parts apply.
 *
 * `part` and `snap` records name the state format their entries are in (`f`, `ENTRY_FORMAT`;
 * absent before format 3). A fold refuses a record of a later format than its build's
 * (`StateFormatError`): an older build taking a partition over must stall, never misread it.
 *
 * - `snap`   {o, max, i, e} … `snapEnd` {o, max, n}: the whole state after the batch ending at `max`
 *            (taken right after a commit, so no intent is pending). Once written, the records
 *            before the first `snap` are deleted (Log.truncate): the changelog holds one snapshot
 *            plus what came after it, so it stays within about three times the state's size
 *            (a new snapshot once the records since the last one outgrow twice its size).
 *
 * The fold below turns a stream of these records into state, `applied` and the pending intent,
 * exactly as the owner's local LMDB store holds them after the same steps.
 */
export type ChangelogRecord =
  | { t: 'claim'; o: string }
  | { t: 'intent'; o: string; min: number; max: number }
  | { t: 'part'; o: string; max: number; i: number; e: StateEntry[]; f?: number }
  | { t: 'delta'; o: string; max: number; n: number }
  | { t: 'snap'; o: string; max: number; i: number; e: StateEntry[]; f?: number }
  | { t: 'snapEnd'; o: string; max: number; n: number }

/** Changelog topic of a source topic (same partition count). */
export function changelogTopicFor(base: string, topic: string, eventsTopic: string): string {
  return topic === eventsTopic ? base : `${base}.${topic}`
}

const rec = (partition: number, r: ChangelogRecord): ProducerRecord => ({ key: `p${partition}`, value: JSON.stringify(r), partition })

export const claimRecord = (partition: number, owner: string): ProducerRecord => rec(partition, { t: 'claim', o: owner })

export const intentRecord = (partition: number, owner: string, intent: BatchIntent): ProducerRecord =>
  rec(partition, { t: 'intent', o: owner, min: intent.minOffset, max: intent.maxOffset })

function chunked(entries: Iterable<StateEntry>, chunkChars: number, make: (i: number, e: StateEntry[]) => ProducerRecord): ProducerRecord[] {
  const out: ProducerRecord[] = []
  let chunk: StateEntry[] = []
  let size = 0
  for (const e of entries) {
    const n = JSON.stringify(e).length
    if (size > 0 && size + n > chunkChars) {
      out.push(make(out.length, chunk))
      chunk = []
      size = 0
    }
    chunk.push(e)
    size += n
  }
  if (chunk.length > 0) out.push(make(out.length, chunk))
  return out
}

/** The whole state of a partition (after the batch ending at `applied`) as `snap` records and their `snapEnd`. */
export function snapshotRecords(partition: number, owner: string, applied: number, entries: Iterable<StateEntry>, chunkChars = 256 * 1024): ProducerRecord[] {
  const out = chunked(entries, chunkChars, (i, e) => rec(partition, { t: 'snap', o: owner, max: applied, i, e, f: ENTRY_FORMAT }))
  out.push(rec(partition, { t: 'snapEnd', o: owner, max: applied, n: out.length }))
  return out
}

/**
 * A batch's state changes as `part` records of at most about `chunkChars` characters each (Kafka's
 * default message limit is 1 MB), then the `delta` record that makes them count.
 */
export function deltaRecords(partition: number, owner: string, maxOffset: number, entries: StateEntry[], chunkChars = 256 * 1024): ProducerRecord[] {
  const out = chunked(entries, chunkChars, (i, e) => rec(partition, { t: 'part', o: owner, max: maxOffset, i, e, f: ENTRY_FORMAT }))
  out.push(rec(partition, { t: 'delta', o: owner, max: maxOffset, n: out.length }))
  return out
}

export function parseChangelog(value: string): ChangelogRecord | undefined {
  try {
    const r = JSON.parse(value) as ChangelogRecord
    return typeof r === 'object' && r !== null && typeof r.t === 'string' && typeof r.o === 'string' ? r : undefined
  } catch {
    return undefined
  }
}

/** True if a claim by another owner than `owner` is among `records` (the owner was fenced). */
export function claimedByOther(records: LogRecord[], owner: string): boolean {
  return records.some((r) => {
    const c = parseChangelog(r.value)
    return c?.t === 'claim' && c.o !== owner
  })
}

/**
 * Folds changelog records (in offset order) onto a store's position: the result is what to write
 * to the store (`PartitionStore.restore`). Rules:
 * - a claim makes its writer the owner; records of anyone else after it are ignored;
 * - an intent or delta at or below `applied` is ignored (already in the state);
 * - a delta applies only with all its parts, written after the owner's claim; parts without their
 *   delta (the writer died mid-append) are dropped;
 * - a delta clears the pending intent, an intent replaces it;
 * - snapshots are skipped, unless the records the store needed next were deleted (`next` is below
 *   the first record read): then the store is rebuilt from the snapshot the changelog starts with
 *   (`reset`), and the fold goes on from there.
 */
export class ChangelogFold {
  owner: string | undefined
  applied: number
  intent: BatchIntent | undefined
  next: number
  /** The store must be cleared and rebuilt from a snapshot (its records were truncated away). */
  reset = false
  private started = false
  private readonly changes = new Map<string, StateEntry>()
  private parts: Array<{ max: number; i: number; e: StateEntry[] }> = []
  private snap: Array<{ max: number; i: number; e: StateEntry[] }> = []

  constructor(start: { applied: number; intent: BatchIntent | undefined; position: ChangelogPosition }) {
    this.owner = start.position.owner
    this.next = start.position.next
    this.applied = start.applied
    this.intent = start.intent
  }

  add(record: LogRecord): void {
    const r = parseChangelog(record.value)
    if (!this.started) {
      this.started = true
      if (record.offset > this.next) {
        // What this store needed was truncated: only a snapshot starting here can rebuild it.
        if (r?.t !== 'snap' || r.i !== 0) throw new Error(`changelog records ${this.next}..${record.offset - 1} are gone and no snapshot starts at ${record.offset}`)
        this.reset = true
        this.owner = r.o
        this.applied = -1
        this.intent = undefined
        this.changes.clear()
      }
    }
    if (r && (r.t === 'part' || r.t === 'snap') && r.f !== undefined && !(r.f <= ENTRY_FORMAT)) {
      throw new StateFormatError(`changelog record ${record.offset} holds state of format ${String(r.f)}; this build reads format ${ENTRY_FORMAT} and earlier`)
    }
    this.next = Math.max(this.next, record.offset + 1)
    if (!r) return
    if (r.t === 'claim') {
      this.owner = r.o
      this.parts = []
      return
    }
    if (r.o !== this.owner) return
    if (r.t === 'snap') {
      if (this.reset && this.applied === -1 && this.snap.length === r.i) this.snap.push({ max: r.max, i: r.i, e: r.e })
    } else if (r.t === 'snapEnd') {
      if (this.reset && this.applied === -1 && this.snap.length === r.n && this.snap.every((p) => p.max === r.max)) {
        for (const p of this.snap) for (const e of p.e) this.change(e)
        this.applied = r.max
      }
      this.snap = []
    } else if (r.t === 'intent') {
      if (r.max > this.applied) this.intent = { minOffset: r.min, maxOffset: r.max }
    } else if (r.t === 'part') {
      if (this.parts.length > 0 && this.parts[0]!.max !== r.max) this.parts = []
      this.parts.push({ max: r.max, i: r.i, e: r.e })
    } else if (r.t === 'delta') {
      const parts = this.parts.filter((p) => p.max === r.max)
      this.parts = []
      if (r.max <= this.applied || parts.length !== r.n || parts.some((p, i) => p.i !== i)) return
      for (const p of parts) for (const e of p.e) this.change(e)
      this.applied = r.max
      this.intent = undefined
    }
  }

  /**
   * Records a change as the latest of its key: moved to the end, so changes apply in the order they
   * were made (a delete of a whole delivery hour, `D:<hour>`, must follow the puts it removes and
   * precede any put into that hour made after it).
   */
  private change(e: StateEntry): void {
    this.changes.delete(e[0])
    this.changes.set(e[0], e)
  }

  result(): { entries: Iterable<StateEntry>; applied: number; intent: BatchIntent | undefined; changelog: ChangelogPosition; reset: boolean } {
    if (this.reset && this.applied === -1) throw new Error('the changelog starts with an incomplete snapshot')
    return { reset: this.reset, entries: this.changes.values(), applied: this.applied, intent: this.intent, changelog: { next: this.next, ...(this.owner ? { owner: this.owner } : {}) } }
  }
}
