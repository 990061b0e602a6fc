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
 * partition's environment, bucketed by the tenth of an hour their state expires in (within the
 * hour's range), so it commits in the same transaction as the rest of the partition state.
 *
 * Why buckets: impression ids are the client's, often random UUIDs. Keyed by the id alone, each
 * batch's states land on random leaf pages of one B-tree that holds the last 25 hours of ids, and
 * every page touched is copied and written again at commit (LMDB is copy-on-write). Measured with
 * 44-byte random keys, 20k per transaction, up to 1.2 M held (`bench/impression-index-bench.ts`):
 * 12.3–13.6 µs of CPU per put, against 2.7–3.1 when the keys carry their hour first. A state's
 * expiry is its latest sighting plus the state lifetime, so a batch's states fall in the newest one
 * or two tenths of an hour. Bucketed by the hour alone, a batch's random ids still landed on the
 * pages of the whole live hour, each page copied again by every batch of that hour (with random UUID
 * ids and 300k records of state, the state commit 6.7 µs per record against 4.5 with ordered ids,
 * `bench/processor-steps-bench.ts`); by the tenth, on the pages of the ten minutes it fills. And a
 * whole hour expires by deleting its range: no expiry schedule entry per key (`x:` lists,
 * expiry.ts) and no key-by-key sweep.
 *
 * Layout (state format 6, partition-store.ts):
 * - entry `[hour: u32 BE][0xf0 + tenth][name]` → the state (impression-codec.ts
 *   `encodeImpressionBytes`), where `hour` = floor(state.ex / 1 h), `tenth` = the tenth of that hour
 *   (0–5, ten minutes each) and `name` is the key after `i:` (a scope, or an impression id alone
 *   from a format-2 store): its bytes when every character is in U+0001–U+007F (ids and publisher
 *   ids are), else a 0x00 byte and its UTF-16LE code units (any string, lone surrogates included, so
 *   distinct names never share bytes). A value without a numeric expiry goes to the last tenth of
 *   the hour of the watermark plus the state lifetime.
 * - A store of format 5 held `[hour][name]`: its name starts with 0x00–0x7f, never 0xf0–0xf5, so
 *   such an entry is read where it is, as the hour's oldest slice (every copy written since is newer),
 *   and goes with its hour; nothing is moved on upgrade.
 * - A slice is an hour's tenth, or its format-5 entries: `slice = hour * 7 + part`, part 0 the
 *   format-5 entries and 1–6 the tenths, so slices sort as their copies' age and neighbouring
 *   slices' numbers are neighbours (a new slice's filter is sized from the fullest one near it).
 * - A state's expiry only grows (dedupe-step.ts keeps the larger), so a name written again in a later
 *   slice leaves its earlier copy behind; a lookup reads the slices newest first and answers the first
 *   copy it finds, and the stale copy goes with its hour. A put into an earlier slice than a copy
 *   already held (a value without an expiry) removes the later copies, so the newest is always the
 *   one read.
 * - The hours live in a ring of named databases (`~impressions.<hour mod 32>`, hour-slots.ts). An
 *   hour is dropped once the partition watermark passes its end (every state in it expired): its
 *   database is cleared when it holds that hour alone, else its key range is deleted. Live hours
 *   span the 25 h lifetime plus one, so two share a database only after a batch's watermark jumped
 *   hours ahead (a backlog) or for a late record's state. In the changelog, state entries keep their form
 *   (`i:<name>` → the state object) and a dropped hour travels as a delete of `I:<hour>:*`.
 *
 * Bloom filters (key-filter.ts): one over every slice's keys answers the lookup of a new impression
 * (most lookups) with one probe; one per hour tells which hours hold a name, newest first, and one per
 * slice which of that hour's slices to read (a click's impression is usually in the newest few). An
 * hour's filter lets a lookup of a name held a day ago pass each later hour with one probe instead of
 * one per slice: about 26 probes and then the hour's few, instead of about 150. (Per hour alone, a new id cost a probe
 * of each of the 26 or so live hours' filters: 2.2–2.6 µs per lookup of an absent name with 26 hours
 * of 20k keys, against 0.67–0.70 with the filter over all of them, and 0.54–0.64 with 2 hours.) No
 * filter is read or built inside a write transaction: a build there might miss the transaction's
 * own puts.
 */
export const IMPRESSION_DB = '~impressions'
/** Whether a key of the root database names one of the impression index's databases. */
export const isImpressionDb = (k: unknown): boolean => isSlotOf(IMPRESSION_DB, k)
export const IMPRESSION_PREFIX = 'i:'
export const IMPRESSION_HOUR_PREFIX = 'I:'
const WHOLE_HOUR = '*'
const HOUR_BYTES = 4
/** An entry's hour, then its tenth's tag byte. */
const PREFIX_BYTES = HOUR_BYTES + 1
const MAX_HOUR = 0xffff_fffe
/** Parts of an hour: its format-5 entries (0), then its tenths (1–6). */
const PARTS = 7
/** Ten minutes: an hour has `TENTHS` of them. */
const TENTH_MS = 600_000
const TENTHS = HOUR_MS / TENTH_MS
/** The tag byte of tenth 0; a name's first byte is below 0x80. */
const TENTH_TAG = 0xf0

/** The slice of the `tenth` of `hour` (see the layout above). */
const sliceOf = (hour: number, tenth: number): number => hour * PARTS + 1 + tenth
const hourOfSlice = (slice: number): number => Math.floor(slice / PARTS)
const partOf = (slice: number): number => slice % PARTS

/** Above every key (hours stay below 2^32 - 1). */
const AFTER_ALL = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])

/** The slice of a state's expiry, or the last tenth of the hour `fallback` for a value without a usable expiry. */
function sliceOfValue(value: unknown, fallback: number): number {
  const ex = typeof value === 'object' && value !== null ? (value as ImpressionState).ex : undefined
  if (typeof ex !== 'number' || !(ex >= 0)) return sliceOf(fallback, TENTHS - 1)
  const hour = Math.floor(ex / HOUR_MS)
  return hour <= MAX_HOUR ? sliceOf(hour, Math.floor((ex - hour * HOUR_MS) / TENTH_MS)) : sliceOf(fallback, TENTHS - 1)
}

/** The first key of `slice`'s range, and the first after it. */
function sliceRange(slice: number): [Buffer, Buffer] {
  const hour = hourOfSlice(slice)
  const part = partOf(slice)
  const start = Buffer.alloc(PREFIX_BYTES)
  start.writeUInt32BE(hour, 0)
  const end = Buffer.from(start)
  // Format-5 entries: names from 0x00 to 0x7f; a tenth: its tag byte.
  start[HOUR_BYTES] = part === 0 ? 0 : TENTH_TAG + part - 1
  end[HOUR_BYTES] = part === 0 ? 0x80 : TENTH_TAG + part
  return [start, end]
}

/** Whether a stored key is a tenth's (else a format-5 entry, its name right after the hour). */
const inTenth = (key: Buffer): boolean => key.length > HOUR_BYTES && key[HOUR_BYTES]! >= TENTH_TAG

/** The hour a value without an expiry goes to: that of `watermark` plus the state lifetime. */
export const fallbackHour = (watermark: number, ttlMs: number): number => Math.min(MAX_HOUR, Math.max(0, Math.floor((watermark + ttlMs) / HOUR_MS)))

export class ImpressionIndex {
  /** Committed slices, newest first. */
  private order: number[] = []
  /** Committed slices, and the hours they are in. */
  private readonly slices = new Set<number>()
  private readonly hours = new Set<number>()
  /** Slices this batch's puts went to that were not committed before. */
  private readonly added = new Set<number>()
  /** Hours this batch drops (the watermark passed their end). */
  private readonly dropped = new Set<number>()
  /** A filter per slice. */
  private readonly filters = new Map<number, KeyFilter>()
  /** A filter per hour, over all its slices. */
  private readonly hourFilters = new Map<number, KeyFilter>()
  /** Every slice's keys (a dropped hour's stay until it is built again): a name in none is answered at once. */
  private readonly all: KeyFilter
  /**
   * Scratch key: a byte, the hour, the tenth's tag, then the name (from `PREFIX_BYTES + 1`); grown
   * for a longer name. A tenth's key starts at byte 1; a format-5 entry's (the hour right before the
   * name) at byte 2.
   */
  private key = Buffer.alloc(1 + PREFIX_BYTES + 512)
  /** End of the name in the scratch key. */
  private end = 0
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
    bloomHashBytes(key, inTenth(key) ? PREFIX_BYTES : HOUR_BYTES, key.length, this.hashes)
    add(this.hashes[0]!, this.hashes[1]!)
  }

  /** The index of a partition's environment (opened with `maxDbs` of at least `PARTITION_MAX_DBS`, hour-slots.ts). */
  static open(root: RootDatabase): ImpressionIndex {
    return new ImpressionIndex(openHourSlots(root, IMPRESSION_DB))
  }

  private loadHours(): void {
    this.hours.clear()
    this.slices.clear()
    for (const hour of heldHours(this.slots)) {
      this.hours.add(hour)
      for (let part = 0; part < PARTS; part++) {
        const slice = hour * PARTS + part
        const [start, end] = sliceRange(slice)
        for (const _ of this.dbOf(hour).getKeys({ start, end, limit: 1 })) this.slices.add(slice)
      }
    }
    this.sortSlices()
  }

  private sortSlices(): void {
    this.order = [...this.slices].sort((a, b) => b - a)
  }

  /** Writes `name`'s bytes into the scratch key after the prefix, and hashes them. */
  private encode(name: string): void {
    const n = name.length
    const from = 1 + PREFIX_BYTES
    if (this.key.length < from + 1 + 2 * n) this.key = Buffer.alloc(from + 1 + 2 * n)
    const k = this.key
    let at = from
    for (let i = 0; i < n; i++) {
      const c = name.charCodeAt(i)
      if (c === 0 || c >= 0x80) {
        k[from] = 0
        at = from + 1 + k.write(name, from + 1, 'utf16le')
        break
      }
      k[at++] = c
    }
    bloomHashBytes(k, from, at, this.hashes)
    this.end = at
  }

  /** The scratch key of the name last encoded in `slice`. */
  private keyIn(slice: number): Buffer {
    const k = this.key
    const hour = hourOfSlice(slice)
    const part = partOf(slice)
    if (part === 0) {
      k.writeUInt32BE(hour, 2)
      return k.subarray(2, this.end)
    }
    k.writeUInt32BE(hour, 1)
    k[PREFIX_BYTES] = TENTH_TAG + part - 1
    return k.subarray(1, this.end)
  }

  private nameOf(key: Buffer): string {
    const from = inTenth(key) ? PREFIX_BYTES : HOUR_BYTES
    return key.length > from && key[from] === 0 ? key.toString('utf16le', from + 1) : key.toString('latin1', from)
  }

  /** The filter of `slice`. */
  private filterOf(slice: number): KeyFilter {
    return this.filters.get(slice) ?? this.newFilter(this.filters, slice, hourOfSlice(slice), () => sliceRange(slice)[0], () => sliceRange(slice)[1])
  }

  /** The filter of `hour`, over all its slices. */
  private hourFilterOf(hour: number): KeyFilter {
    return this.hourFilters.get(hour) ?? this.newFilter(this.hourFilters, hour, hour, () => bucketStart(hour), () => bucketStart(hour + 1))
  }

  /**
   * A filter of `filters` (slices' or hours'), kept under `id`, over the keys of `hour`'s database in
   * [start, end), sized from the fullest one near `id`; built on its first lookup.
   */
  private newFilter(filters: Map<number, KeyFilter>, id: number, hour: number, start: () => Buffer, end: () => Buffer): KeyFilter {
    const f = new KeyFilter(lmdbKeySource<Buffer>(this.dbOf(hour), start, end, (key, add) => this.addHashesOf(key, add)), () => liveHourCapacity(filters, id))
    filters.set(id, f)
    return f
  }

  /** The committed value of `name` (the copy in its newest slice), not counting hours this batch drops. */
  get(name: string): unknown {
    if (this.order.length === 0) return undefined
    this.encode(name)
    const h1 = this.hashes[0]!
    const h2 = this.hashes[1]!
    if (!this.all.mayHave(h1, h2)) return undefined
    // `order` runs newest first, an hour's slices together: its filter is asked once, at its first.
    let hour = -1
    let inHour = false
    for (const slice of this.order) {
      const h = hourOfSlice(slice)
      if (h !== hour) {
        hour = h
        inHour = !(this.dropped.size > 0 && this.dropped.has(h)) && this.hourFilterOf(h).mayHave(h1, h2)
      }
      if (!inHour || !this.filterOf(slice).mayHave(h1, h2)) continue
      const b = this.dbOf(h).getBinaryFast(this.keyIn(slice))
      if (b !== undefined) return decodeImpressionBytes(b)
    }
    return undefined
  }

  /**
   * Writes `name`'s value into the slice of its expiry (`fallback`: the hour of a value without
   * one), inside the partition's write transaction; drops (`writeDrops`) go first.
   */
  put(name: string, value: unknown, fallback: number): void {
    const slice = sliceOfValue(value, fallback)
    const hour = hourOfSlice(slice)
    this.encode(name)
    const h1 = this.hashes[0]!
    const h2 = this.hashes[1]!
    // Copies in later slices (only a value without an expiry goes below one, rarely): removed, so
    // this is the newest. Every later slice is asked, not its filter (see above).
    for (const s of this.order) {
      if (s <= slice) break
      void this.dbOf(hourOfSlice(s)).remove(this.keyIn(s))
    }
    // lmdb copies the key bytes as it takes the put; the value's bytes are its own.
    void this.dbOf(hour).put(this.keyIn(slice), encodeImpressionBytes(value))
    let filter = this.filters.get(slice)
    if (filter === undefined && !this.slices.has(slice) && !this.added.has(slice)) {
      // A slice with no committed key: its filter starts empty and gets every key as it is written.
      filter = this.filterOf(slice)
      filter.startEmpty()
    }
    ;(filter ?? this.filterOf(slice)).add(h1, h2)
    let hourFilter = this.hourFilters.get(hour)
    if (hourFilter === undefined && !this.hours.has(hour) && !this.addedTo(hour)) {
      // Likewise an hour with no committed key.
      hourFilter = this.hourFilterOf(hour)
      hourFilter.startEmpty()
    }
    ;(hourFilter ?? this.hourFilterOf(hour)).add(h1, h2)
    this.all.add(h1, h2)
    // An hour this batch drops that gets a key again (a late record's state) stays committed.
    if (!this.slices.has(slice) || this.dropped.has(hour)) this.added.add(slice)
  }

  /** Whether this batch's puts went to a slice of `hour` not committed before. */
  private addedTo(hour: number): boolean {
    for (const slice of this.added) if (hourOfSlice(slice) === hour) return true
    return false
  }

  /**
   * Removes every copy of `name` (inside the write transaction; every slice is asked, not its filter).
   * Only a changelog delete or a schedule entry of an older build removes one state: hours expire whole.
   */
  remove(name: string): void {
    this.encode(name)
    for (const s of this.order) void this.dbOf(hourOfSlice(s)).remove(this.keyIn(s))
  }

  /** Marks every hour whose end the watermark passed for dropping with this batch; answers how many. */
  sweep(watermark: number): number {
    let n = 0
    for (const hour of this.hours) {
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

  /** After the write transaction committed: the batch's slices become the committed view. */
  committed(): void {
    if (this.added.size === 0 && this.dropped.size === 0) return
    for (const hour of this.dropped) this.forgetHour(hour)
    // A late record's state may have gone to an hour this batch dropped: it stays, and goes with the next sweep.
    for (const slice of this.added) {
      this.slices.add(slice)
      this.hours.add(hourOfSlice(slice))
    }
    this.discard()
    this.sortSlices()
  }

  /** Forgets a dropped hour's slices and their filters. */
  private forgetHour(hour: number): void {
    this.hours.delete(hour)
    this.hourFilters.delete(hour)
    for (let part = 0; part < PARTS; part++) {
      this.slices.delete(hour * PARTS + part)
      this.filters.delete(hour * PARTS + part)
    }
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
        // Later entries of the same restore see the slice.
        const slice = sliceOfValue(e[1], fallback)
        this.added.clear()
        if (!this.slices.has(slice)) {
          this.slices.add(slice)
          this.hours.add(hourOfSlice(slice))
          this.sortSlices()
        }
      }
      return true
    }
    if (!k.startsWith(IMPRESSION_HOUR_PREFIX)) return false
    const hour = Number(k.slice(IMPRESSION_HOUR_PREFIX.length, k.indexOf(':', IMPRESSION_HOUR_PREFIX.length)))
    if (e.length === 1 && Number.isInteger(hour) && hour >= 0) {
      dropHour(this.slots, hour, this.hours, new Set([hour]), new Set())
      this.forgetHour(hour)
      this.sortSlices()
    }
    return true
  }

  /** Keys were written around the filters and the slice list (a restore): read both again. */
  reload(): void {
    this.filters.clear()
    this.hourFilters.clear()
    this.all.invalidate()
    this.discard()
    this.loadHours()
  }

  /** Deletes every entry (inside the restore transaction, when the store is rebuilt from a snapshot). */
  clear(): void {
    for (const db of this.slots) void db.clearAsync()
    this.hours.clear()
    this.slices.clear()
    this.filters.clear()
    this.hourFilters.clear()
    this.all.invalidate()
    this.sortSlices()
  }

  /** Every committed entry as a changelog entry, oldest slice first (so a restore keeps the newest copy newest). */
  *entries(): Generator<StateEntry> {
    for (const [name, value] of this.names()) yield [`${IMPRESSION_PREFIX}${name}`, value]
  }

  /** Committed entries with their name (for upgrades and tests), oldest slice first. */
  *names(): Generator<[string, unknown]> {
    for (const hour of heldHours(this.slots)) {
      // Format-5 entries (names from 0x00 to 0x7f), then the tenths in order: the key order.
      for (const { key, value } of this.dbOf(hour).getRange({ start: bucketStart(hour), end: bucketStart(hour + 1) })) yield [this.nameOf(key), decodeImpressionBytes(value)]
    }
  }

  /** Hour and slice filters built by reading their keys back, among those held (tests, metrics). */
  filterBuilds(): { hours: number; slices: number } {
    let hours = 0
    let slices = 0
    for (const f of this.hourFilters.values()) hours += f.builds
    for (const f of this.filters.values()) slices += f.builds
    return { hours, slices }
  }

  /** Committed entries (stale copies included), hours, slices, and the bytes of this database's B-tree pages. */
  stats(): { keys: number; hours: number; slices: number; usedBytes: number } {
    const { entries, usedBytes } = treeStats(this.slots)
    return { keys: entries, hours: this.hours.size, slices: this.slices.size, usedBytes }
  }
}
