import type { LogRecord, ProducerRecord } from '../log/log.js'
import type { BatchIntent, ChangelogPosition, StateEntry } from './partition-store.js'

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
 * The fold below turns a stream of these records into state, `applied` and the pending intent,
 * exactly as the owner's local LMDB store holds them after the same steps.
 */
export type ChangelogRecord =
  | { t: 'claim'; o: string }
  | { t: 'intent'; o: string; min: number; max: number }
  | { t: 'part'; o: string; max: number; i: number; e: StateEntry[] }
  | { t: 'delta'; o: string; max: number; n: number }

/** Changelog topic of a source topic (same partition count). */
export function changelogTopicFor(base: string, topic: string, eventsTopic: string): string {
  return topic === eventsTopic ? base : `${base}.${topic}`
}

const rec = (partition: number, r: ChangelogRecord): ProducerRecord => ({ key: `p${partition}`, value: JSON.stringify(r), partition })

export const claimRecord = (partition: number, owner: string): ProducerRecord => rec(partition, { t: 'claim', o: owner })

export const intentRecord = (partition: number, owner: string, intent: BatchIntent): ProducerRecord =>
  rec(partition, { t: 'intent', o: owner, min: intent.minOffset, max: intent.maxOffset })

/**
 * A batch's state changes as `part` records of at most about `chunkChars` characters each (Kafka's
 * default message limit is 1 MB), then the `delta` record that makes them count.
 */
export function deltaRecords(partition: number, owner: string, maxOffset: number, entries: StateEntry[], chunkChars = 256 * 1024): ProducerRecord[] {
  const out: ProducerRecord[] = []
  let chunk: StateEntry[] = []
  let size = 0
  const flush = (): void => {
    out.push(rec(partition, { t: 'part', o: owner, max: maxOffset, i: out.length, e: chunk }))
    chunk = []
    size = 0
  }
  for (const e of entries) {
    const n = JSON.stringify(e).length
    if (size > 0 && size + n > chunkChars) flush()
    chunk.push(e)
    size += n
  }
  if (chunk.length > 0) flush()
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
 * - a delta clears the pending intent, an intent replaces it.
 */
export class ChangelogFold {
  owner: string | undefined
  applied: number
  intent: BatchIntent | undefined
  next: number
  private readonly changes = new Map<string, StateEntry>()
  private parts: Array<{ max: number; i: number; e: StateEntry[] }> = []

  constructor(start: { applied: number; intent: BatchIntent | undefined; position: ChangelogPosition }) {
    this.owner = start.position.owner
    this.next = start.position.next
    this.applied = start.applied
    this.intent = start.intent
  }

  add(record: LogRecord): void {
    this.next = Math.max(this.next, record.offset + 1)
    const r = parseChangelog(record.value)
    if (!r) return
    if (r.t === 'claim') {
      this.owner = r.o
      this.parts = []
      return
    }
    if (r.o !== this.owner) return
    if (r.t === 'intent') {
      if (r.max > this.applied) this.intent = { minOffset: r.min, maxOffset: r.max }
    } else if (r.t === 'part') {
      if (this.parts.length > 0 && this.parts[0]!.max !== r.max) this.parts = []
      this.parts.push({ max: r.max, i: r.i, e: r.e })
    } else if (r.t === 'delta') {
      const parts = this.parts.filter((p) => p.max === r.max)
      this.parts = []
      if (r.max <= this.applied || parts.length !== r.n || parts.some((p, i) => p.i !== i)) return
      for (const p of parts) for (const e of p.e) this.changes.set(e[0], e)
      this.applied = r.max
      this.intent = undefined
    }
  }

  result(): { entries: Iterable<StateEntry>; applied: number; intent: BatchIntent | undefined; changelog: ChangelogPosition } {
    return { entries: this.changes.values(), applied: this.applied, intent: this.intent, changelog: { next: this.next, ...(this.owner ? { owner: this.owner } : {}) } }
  }
}
