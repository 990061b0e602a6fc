import type { Database, RootDatabase } from 'lmdb'
import { detachedText } from '@adc/schemas'
import type { StateEntry } from './partition-store.js'

/**
 * IVT burst counters (events per IP prefix and per user key per minute of edge receive time), in a
 * binary LMDB database of their own inside the partition's environment (committed in the same
 * transaction as the rest of the state).
 *
 * Layout (state format 2): `[minute: u32 BE][kind: 1 byte][value: UTF-8]` → `[count: u32 BE]`,
 * the value itself (not a hash), so counts are exact. Keys of one minute sit together; a minute is
 * kept while the watermark's minute is at most two past it (as the per-key expiry before it), then
 * its whole key range is deleted: no per-key expiry schedule.
 *
 * In the changelog (state/changelog.ts): `B:<minute>:<kind><value>` → count, and a delete of
 * `B:<minute>:*` deletes the whole minute.
 */
export type BurstKind = 'ip' | 'uk'
export const BURST_DB = '~bursts'
export const BURST_ENTRY_PREFIX = 'B:'
const KIND_BYTE: Record<BurstKind, number> = { ip: 0x69 /* i */, uk: 0x75 /* u */ }
const KIND_CHAR: Record<BurstKind, string> = { ip: 'i', uk: 'u' }
const KINDS: readonly BurstKind[] = ['ip', 'uk']
const WHOLE_MINUTE = '*'
/** Minutes a counter outlives its own before the watermark's minute drops it. */
const KEEP_MINUTES = 2

/** One minute's counters of this batch, by kind, then value. */
type MinuteCounts = Record<BurstKind, Map<string, number>>

function keyOf(minute: number, kindByte: number, value: string): Buffer {
  const b = Buffer.allocUnsafe(5 + Buffer.byteLength(value))
  b.writeUInt32BE(minute, 0)
  b[4] = kindByte
  b.write(value, 5, 'utf8')
  return b
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(n, 0)
  return b
}

function minuteRange(minute: number): { start: Buffer; end: Buffer } {
  return { start: u32(minute), end: u32(minute + 1) }
}

/** An event's burst counts in its receive minute (itself included), per IP prefix and per user key. */
export interface BurstCounts {
  ip: number
  uk: number
}

export class BurstCounters {
  /** Minutes with committed counters. */
  private readonly minutes = new Set<number>()
  /**
   * This batch: counters by minute, then by kind (`ip`, `uk`), then by value (no `<kind><value>`
   * string built per lookup); minutes dropped. `last` is the minute looked up last (nearly every
   * event falls in the current one).
   */
  private readonly counts = new Map<number, MinuteCounts>()
  private lastMinute = -1
  private lastCounts: MinuteCounts | undefined
  private readonly dropped = new Set<number>()

  constructor(private readonly db: Database<Buffer, Buffer>) {
    // One key per minute is enough to know the minute is there: hop from minute to minute.
    for (let start = 0; ; ) {
      let next: number | undefined
      for (const key of db.getKeys({ start: u32(start), limit: 1 })) next = key.readUInt32BE(0)
      if (next === undefined) break
      this.minutes.add(next)
      start = next + 1
    }
  }

  static open(root: RootDatabase): BurstCounters {
    return new BurstCounters(root.openDB<Buffer, Buffer>({ name: BURST_DB, keyEncoding: 'binary', encoding: 'binary', compression: false }))
  }

  /** The count of `kind`/`value` in `minute`, after adding one when `bump`. */
  count(kind: BurstKind, value: string, minute: number, bump: boolean): number {
    let m = this.lastMinute === minute ? this.lastCounts : this.counts.get(minute)
    let n = m?.[kind].get(value)
    const fresh = n === undefined
    if (n === undefined) {
      n = 0
      if (this.minutes.has(minute) && !this.dropped.has(minute)) {
        const b = this.db.getBinaryFast(keyOf(minute, KIND_BYTE[kind], value))
        if (b !== undefined) n = b.readUInt32BE(0)
      }
      if (!bump) return n
    }
    if (bump) {
      n++
      if (!m) this.counts.set(minute, (m = { ip: new Map(), uk: new Map() }))
      this.lastMinute = minute
      this.lastCounts = m
      // A new key is kept for minutes: as a string of its own, not a cut holding its record's text.
      m[kind].set(fresh ? detachedText(value) : value, n)
    }
    return n
  }

  /**
   * Counts an event (received at `receivedAt`, epoch ms) in its minute, by its IP prefix and user
   * key where it has them, and answers its counts, itself included.
   */
  arrive(ipPrefix: string | undefined, userKey: string | undefined, receivedAt: number): BurstCounts {
    const minute = Math.floor(receivedAt / 60_000)
    return { ip: ipPrefix ? this.count('ip', ipPrefix, minute, true) : 0, uk: userKey ? this.count('uk', userKey, minute, true) : 0 }
  }

  /** Drops every minute the watermark left more than two minutes behind. */
  sweep(watermark: number): number {
    const current = Math.floor(watermark / 60_000)
    let n = 0
    for (const minute of [...this.minutes, ...this.counts.keys()]) {
      if (minute + KEEP_MINUTES >= current || this.dropped.has(minute)) continue
      this.counts.delete(minute)
      if (this.lastMinute === minute) this.lastMinute = -1
      if (this.minutes.has(minute)) this.dropped.add(minute)
      n++
    }
    return n
  }

  pendingKeys(): number {
    let n = 0
    for (const m of this.counts.values()) n += m.ip.size + m.uk.size
    return n
  }

  pendingEntries(): StateEntry[] {
    // Dropped minutes first, as `write` does: a count made after a drop (from zero) survives it.
    const out: StateEntry[] = []
    for (const minute of this.dropped) out.push([`${BURST_ENTRY_PREFIX}${minute}:${WHOLE_MINUTE}`])
    for (const [minute, m] of this.counts) for (const kind of KINDS) for (const [v, n] of m[kind]) out.push([`${BURST_ENTRY_PREFIX}${minute}:${KIND_CHAR[kind]}${v}`, n])
    return out
  }

  /** Inside the partition's write transaction; then `committed()`. */
  write(): void {
    for (const minute of this.dropped) this.removeMinute(minute)
    for (const [minute, m] of this.counts) {
      for (const kind of KINDS) for (const [v, n] of m[kind]) void this.db.put(keyOf(minute, KIND_BYTE[kind], v), u32(n))
    }
  }

  private removeMinute(minute: number): void {
    for (const k of this.db.getKeys(minuteRange(minute))) void this.db.remove(k)
  }

  committed(): void {
    for (const minute of this.dropped) this.minutes.delete(minute)
    for (const minute of this.counts.keys()) this.minutes.add(minute)
    this.discard()
  }

  discard(): void {
    this.lastMinute = -1
    this.lastCounts = undefined
    this.counts.clear()
    this.dropped.clear()
  }

  /** Applies a changelog entry of this family (inside the restore transaction); false for any other key. */
  restoreEntry(e: StateEntry): boolean {
    const key = e[0]
    if (!key.startsWith(BURST_ENTRY_PREFIX)) return false
    const colon = key.indexOf(':', BURST_ENTRY_PREFIX.length)
    const minute = Number(key.slice(BURST_ENTRY_PREFIX.length, colon))
    const k = key.slice(colon + 1)
    if (k === WHOLE_MINUTE) {
      if (e.length === 1) {
        this.removeMinute(minute)
        this.minutes.delete(minute)
      }
      return true
    }
    const bin = keyOf(minute, k.charCodeAt(0), k.slice(1))
    if (e.length === 1) void this.db.remove(bin)
    else {
      void this.db.put(bin, u32(e[1] as number))
      this.minutes.add(minute)
    }
    return true
  }

  clear(): void {
    for (const k of this.db.getKeys({})) void this.db.remove(k)
    this.minutes.clear()
  }

  *entries(): Generator<StateEntry> {
    for (const { key: b, value } of this.db.getRange({})) {
      yield [`${BURST_ENTRY_PREFIX}${b.readUInt32BE(0)}:${String.fromCharCode(b[4]!)}${b.toString('utf8', 5)}`, value.readUInt32BE(0)]
    }
  }

  stats(): { keys: number; usedBytes: number } {
    const st = this.db.getStats() as { pageSize: number; entryCount: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
    return { keys: st.entryCount, usedBytes: st.pageSize * (st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages) }
  }
}
