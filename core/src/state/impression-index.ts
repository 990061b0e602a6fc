import type { Database, RootDatabase } from 'lmdb'
import { bloomHashBytes } from '@adc/schemas'
import { decodeImpressionBytes, encodeImpressionBytes } from './impression-codec.js'
import { bucketStart, dropHour, heldHours, HOUR_MS, HOUR_SLOTS, isSlotOf, openHourSlots, treeStats } from './hour-slots.js'
import { KeyFilter, liveHourCapacity, lmdbKeySource } from './key-filter.js'
import type { ImpressionState } from './keys.js'
import type { StateEntry } from './partition-store.js'

/**
 * Impression states (`i:<scope>` entries, keys.ts: the business dedupe and join state of an
 * impression id within its publisher) in a binary LMDB database of their own inside the
 * partition's environment, bucketed by the hour their state expires in, so it commits in the same
 * transaction as the rest of the partition state.
 *
 * Why buckets: impression ids are the client's, often random UUIDs. Keyed by the id alone, each
 * batch's states land on random leaf pages of one B-tree that holds the last 25 hours of ids, and
 * every page touched is copied and written again at commit (LMDB is copy-on-write). Measured with
 * 44-byte random keys, 20k per transaction, up to 1.2 M held (`bench/impression-index-bench.ts`):
 * 12.3–13.6 µs of CPU per put, against 2.7–3.1 when the keys carry their hour first. A state's
 * expiry is its latest sighting plus the state lifetime, so a batch's states fall in the newest one
 * or two hours, whose range is a twenty-fifth of the tree. And a whole hour expires by deleting its
 * range: no expiry schedule entry per key (`x:` lists, expiry.ts) and no key-by-key sweep.
 *
 * Layout (state format 5, partition-store.ts):
 * - entry `[hour: u32 BE][name]` → the state (impression-codec.ts `encodeImpressionBytes`), where
 *   `hour` = floor(state.ex / 1 h) and `name` is the key after `i:` (a scope, or an impression id
 *   alone from a format-2 store): its bytes when every character is in U+0001–U+007F (ids and
 *   publisher ids are), else a 0x00 byte and its UTF-16LE code units (any string, lone surrogates
 *   included, so distinct names never share bytes). A value without a numeric expiry goes to the
 *   hour of the watermark plus the state lifetime.
 * - A state's expiry only grows (dedupe-step.ts keeps the larger), so a name written again in a later
 *   hour leaves its earlier copy behind; a lookup reads the hours newest first and answers the first
 *   copy it finds, and the stale copy goes with its hour. A put into an earlier hour than a copy
 *   already held (a value without an expiry) removes the later copies, so the newest is always the
 *   one read.
 * - The hours live in a ring of named databases (`~impressions.<hour mod 32>`, hour-slots.ts). An
 *   hour is dropped once the partition watermark passes its end (every state in it expired): its
 *   database is cleared when it holds that hour alone, else its key range is deleted. Live hours
 *   span the 25 h lifetime plus one, so two share a database only after a batch's watermark jumped
 *   hours ahead (a backlog) or for a late record's state. In the changelog, state entries keep their form
 *   (`i:<name>` → the state object) and a dropped hour travels as a delete of `I:<hour>:*`.
 *
 * Bloom filters (key-filter.ts): one over every hour's keys answers the lookup of a new impression
 * (most lookups) with one probe; one per hour tells which hours to read for a name held. (Per hour
 * alone, a new id cost a probe of each of the 26 or so live hours' filters: 2.2–2.6 µs per lookup
 * of an absent name with 26 hours of 20k keys, against 0.67–0.70 with the filter over all of them,
 * and 0.54–0.64 with 2 hours.) No filter is read or built inside a write transaction: a build
 * there might miss the transaction's own puts.
 */
export const IMPRESSION_DB = '~impressions'
/** Whether a key of the root database names one of the impression index's databases. */
export const isImpressionDb = (k: unknown): boolean => isSlotOf(IMPRESSION_DB, k)
export const IMPRESSION_PREFIX = 'i:'
export const IMPRESSION_HOUR_PREFIX = 'I:'
const WHOLE_HOUR = '*'
const HOUR_BYTES = 4
const MAX_HOUR = 0xffff_fffe

/** Above every key (hours stay below 2^32 - 1). */
const AFTER_ALL = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])

/** The expiry hour of a state, or `fallback` for a value without a usable expiry. */
function hourOfValue(value: unknown, fallback: number): number {
  const ex = typeof value === 'object' && value !== null ? (value as ImpressionState).ex : undefined
  if (typeof ex !== 'number' || !(ex >= 0)) return fallback
  const hour = Math.floor(ex / HOUR_MS)
  return hour <= MAX_HOUR ? hour : fallback
}

/** The hour a value without an expiry goes to: that of `watermark` plus the state lifetime. */
export const fallbackHour = (watermark: number, ttlMs: number): number => Math.min(MAX_HOUR, Math.max(0, Math.floor((watermark + ttlMs) / HOUR_MS)))

export class ImpressionIndex {
  /** Committed hours, newest first. */
  private order: number[] = []
  private readonly hours = new Set<number>()
  /** Hours this batch's puts went to that were not committed before. */
  private readonly added = new Set<number>()
  /** Hours this batch drops (the watermark passed their end). */
  private readonly dropped = new Set<number>()
  private readonly filters = new Map<number, KeyFilter>()
  /** Every hour's keys (a dropped hour's stay until it is built again): a name in none is answered at once. */
  private readonly all: KeyFilter
  /** Scratch key: the hour, then the name; grown for a longer name. */
  private key = Buffer.alloc(HOUR_BYTES + 512)
  private readonly hashes = new Float64Array(2)

  constructor(private readonly slots: ReadonlyArray<Database<Buffer, Buffer>>) {
    const sources = slots.map((db) => lmdbKeySource<Buffer>(db, () => bucketStart(0), () => AFTER_ALL, (key, add) => this.addHashesOf(key, add)))
    this.all = new KeyFilter({
      count: () => sources.reduce((n, src) => n + src.count(), 0),
      forEachHash: (add) => {
        for (const src of sources) src.forEachHash(add)
      },
    })
    this.loadHours()
  }

  private dbOf(hour: number): Database<Buffer, Buffer> {
    return this.slots[hour % HOUR_SLOTS]!
  }

  private addHashesOf(key: Buffer, add: (h1: number, h2: number) => void): void {
    bloomHashBytes(key, HOUR_BYTES, key.length, this.hashes)
    add(this.hashes[0]!, this.hashes[1]!)
  }

  /** The index of a partition's environment (opened with `maxDbs` of at least `PARTITION_MAX_DBS`, hour-slots.ts). */
  static open(root: RootDatabase): ImpressionIndex {
    return new ImpressionIndex(openHourSlots(root, IMPRESSION_DB))
  }

  private loadHours(): void {
    this.hours.clear()
    for (const hour of heldHours(this.slots)) this.hours.add(hour)
    this.sortHours()
  }

  private sortHours(): void {
    this.order = [...this.hours].sort((a, b) => b - a)
  }

  /** Writes `name`'s key bytes after the hour into the scratch key; answers the key's length, and hashes the name. */
  private encode(name: string): number {
    const n = name.length
    if (this.key.length < HOUR_BYTES + 1 + 2 * n) this.key = Buffer.alloc(HOUR_BYTES + 1 + 2 * n)
    const k = this.key
    let at = HOUR_BYTES
    for (let i = 0; i < n; i++) {
      const c = name.charCodeAt(i)
      if (c === 0 || c >= 0x80) {
        k[HOUR_BYTES] = 0
        at = HOUR_BYTES + 1 + k.write(name, HOUR_BYTES + 1, 'utf16le')
        break
      }
      k[at++] = c
    }
    bloomHashBytes(k, HOUR_BYTES, at, this.hashes)
    return at
  }

  private nameOf(key: Buffer): string {
    return key.length > HOUR_BYTES && key[HOUR_BYTES] === 0 ? key.toString('utf16le', HOUR_BYTES + 1) : key.toString('latin1', HOUR_BYTES)
  }

  private filterOf(hour: number): KeyFilter {
    let f = this.filters.get(hour)
    if (!f) {
      f = new KeyFilter(
        lmdbKeySource<Buffer>(this.dbOf(hour), () => bucketStart(hour), () => bucketStart(hour + 1), (key, add) => this.addHashesOf(key, add)),
        () => liveHourCapacity(this.filters, hour),
      )
      this.filters.set(hour, f)
    }
    return f
  }

  /** The committed value of `name` (the copy in its newest hour), not counting hours this batch drops. */
  get(name: string): unknown {
    if (this.order.length === 0) return undefined
    const key = this.key.subarray(0, this.encode(name))
    const h1 = this.hashes[0]!
    const h2 = this.hashes[1]!
    if (!this.all.mayHave(h1, h2)) return undefined
    for (const hour of this.order) {
      if (this.dropped.size > 0 && this.dropped.has(hour)) continue
      if (!this.filterOf(hour).mayHave(h1, h2)) continue
      key.writeUInt32BE(hour, 0)
      const b = this.dbOf(hour).getBinaryFast(key)
      if (b !== undefined) return decodeImpressionBytes(b)
    }
    return undefined
  }

  /**
   * Writes `name`'s value into its expiry hour (`fallback`: the hour of a value without one), inside
   * the partition's write transaction; drops (`writeDrops`) go first.
   */
  put(name: string, value: unknown, fallback: number): void {
    const hour = hourOfValue(value, fallback)
    const key = this.key.subarray(0, this.encode(name))
    const h1 = this.hashes[0]!
    const h2 = this.hashes[1]!
    // Copies in later hours (only a value without an expiry goes below one, rarely): removed, so
    // this is the newest. Every later hour is asked, not its filter (see above).
    for (const h of this.order) {
      if (h <= hour) break
      key.writeUInt32BE(h, 0)
      void this.dbOf(h).remove(key)
    }
    key.writeUInt32BE(hour, 0)
    // lmdb copies the key bytes as it takes the put; the value's bytes are its own.
    void this.dbOf(hour).put(key, encodeImpressionBytes(value))
    let filter = this.filters.get(hour)
    if (filter === undefined && !this.hours.has(hour) && !this.added.has(hour)) {
      // An hour with no committed key: its filter starts empty and gets every key as it is written.
      filter = this.filterOf(hour)
      filter.startEmpty()
    }
    ;(filter ?? this.filterOf(hour)).add(h1, h2)
    this.all.add(h1, h2)
    // An hour this batch drops that gets a key again (a late record's state) stays committed.
    if (!this.hours.has(hour) || this.dropped.has(hour)) this.added.add(hour)
  }

  /**
   * Removes every copy of `name` (inside the write transaction; every hour is asked, not its filter).
   * Only a changelog delete or a schedule entry of an older build removes one state: hours expire whole.
   */
  remove(name: string): void {
    const key = this.key.subarray(0, this.encode(name))
    for (const h of this.order) {
      key.writeUInt32BE(h, 0)
      void this.dbOf(h).remove(key)
    }
  }

  /** Marks every hour whose end the watermark passed for dropping with this batch; answers how many. */
  sweep(watermark: number): number {
    let n = 0
    for (const hour of this.order) {
      if ((hour + 1) * HOUR_MS > watermark || this.dropped.has(hour)) continue
      this.dropped.add(hour)
      n++
    }
    return n
  }

  /** Deletes the hours this batch drops (inside the write transaction, before its puts). */
  writeDrops(): void {
    const cleared = new Set<number>()
    for (const hour of this.dropped) dropHour(this.slots, hour, this.hours, this.dropped, cleared)
  }

  /** The batch's dropped hours as changelog entries (they go before its puts). */
  pendingEntries(): StateEntry[] {
    return [...this.dropped].map((hour) => [`${IMPRESSION_HOUR_PREFIX}${hour}:${WHOLE_HOUR}`])
  }

  /** After the write transaction committed: the batch's hours become the committed view. */
  committed(): void {
    if (this.added.size === 0 && this.dropped.size === 0) return
    for (const hour of this.dropped) {
      this.hours.delete(hour)
      this.filters.delete(hour)
    }
    for (const hour of this.added) this.hours.add(hour)
    // A late record's state may have gone to an hour this batch dropped: it stays, and goes with the next sweep.
    this.discard()
    this.sortHours()
  }

  discard(): void {
    this.added.clear()
    this.dropped.clear()
  }

  /**
   * Applies a changelog entry of this family (inside the restore transaction): `i:<name>` puts and
   * deletes, `I:<hour>:*` deletes. Answers false for any other key.
   */
  restoreEntry(e: StateEntry, fallback: number): boolean {
    const k = e[0]
    if (k.startsWith(IMPRESSION_PREFIX)) {
      const name = k.slice(IMPRESSION_PREFIX.length)
      if (e.length === 1) this.remove(name)
      else {
        this.put(name, e[1], fallback)
        // Later entries of the same restore see the hour.
        const hour = hourOfValue(e[1], fallback)
        this.added.clear()
        if (!this.hours.has(hour)) {
          this.hours.add(hour)
          this.sortHours()
        }
      }
      return true
    }
    if (!k.startsWith(IMPRESSION_HOUR_PREFIX)) return false
    const hour = Number(k.slice(IMPRESSION_HOUR_PREFIX.length, k.indexOf(':', IMPRESSION_HOUR_PREFIX.length)))
    if (e.length === 1 && Number.isInteger(hour) && hour >= 0) {
      dropHour(this.slots, hour, this.hours, new Set([hour]), new Set())
      this.hours.delete(hour)
      this.filters.delete(hour)
      this.sortHours()
    }
    return true
  }

  /** Keys were written around the filters and the hour list (a restore): read both again. */
  reload(): void {
    this.filters.clear()
    this.all.invalidate()
    this.discard()
    this.loadHours()
  }

  /** Deletes every entry (inside the restore transaction, when the store is rebuilt from a snapshot). */
  clear(): void {
    for (const db of this.slots) void db.clearAsync()
    this.hours.clear()
    this.filters.clear()
    this.all.invalidate()
    this.sortHours()
  }

  /** Every committed entry as a changelog entry, oldest hour first (so a restore keeps the newest copy newest). */
  *entries(): Generator<StateEntry> {
    for (const [name, value] of this.names()) yield [`${IMPRESSION_PREFIX}${name}`, value]
  }

  /** Committed entries with their name (for upgrades and tests), oldest hour first. */
  *names(): Generator<[string, unknown]> {
    for (const hour of heldHours(this.slots)) {
      for (const { key, value } of this.dbOf(hour).getRange({ start: bucketStart(hour), end: bucketStart(hour + 1) })) yield [this.nameOf(key), decodeImpressionBytes(value)]
    }
  }

  /** Per-hour filters built by reading their hour's keys back, among the hours held (tests, metrics). */
  hourFilterBuilds(): number {
    let n = 0
    for (const f of this.filters.values()) n += f.builds
    return n
  }

  /** Committed entries (stale copies included), hours, and the bytes of this database's B-tree pages. */
  stats(): { keys: number; hours: number; usedBytes: number } {
    const { entries, usedBytes } = treeStats(this.slots)
    return { keys: entries, hours: this.hours.size, usedBytes }
  }
}
