import { createHash } from 'node:crypto'
import type { Database, RootDatabase } from 'lmdb'
import { eventIdTimeMs } from '@adc/schemas'
import { DEDUPE_HORIZON_MS, STATE_TTL_MS } from '../rules/rules.js'
import { bucketStart, dropHour, HOUR_MS, HOUR_SLOTS, isSlotOf, openHourSlots, treeStats } from './hour-slots.js'
import { KeyFilter, liveHourCapacity, lmdbKeySource } from './key-filter.js'
import type { StateEntry } from './partition-store.js'

/**
 * Delivery dedupe state (the edge idempotency key → the offset where it was first seen), in a
 * binary LMDB database of its own inside the partition's environment, so it commits in the same
 * transaction as the rest of the partition state.
 *
 * Layout (format 2, `STATE_FORMAT` in partition-store.ts; the second of the hour from format 6):
 * - entry  `[hour: u32 BE][second: u16 BE][key: 12 bytes]` → `[offset: u48 BE][expiry: u32 BE, epoch seconds][last: u48 BE, epoch ms]`
 *   (18-byte key, 16-byte value), where `second` is that of the event id's time within its hour, so
 *   a batch's keys, whose event ids carry times close to each other, go to the pages of the seconds
 *   they fill rather than to random pages of the whole hour (LMDB copies every page a batch touches:
 *   with 300k records of state, the state commit 0.5–1.0 µs per record less,
 *   `bench/processor-steps-bench.ts`). Keys of the no-time and legacy buckets, and keys a store of
 *   format 5 or before wrote or a changelog entry without its second restores, are 16 bytes,
 *   `[hour][key: 12 bytes]` (see "Keys without their second" below). The value is the offset of the key's first sighting, the expiry of its state
 *   (its latest `receivedAt` + TTL) and that latest edge receive time (`last`, 0: unknown). A later
 *   record with the key is a duplicate when it reached the edge at most the dedupe horizon after
 *   `last` (rules/rules.ts, sliding with each sighting, in milliseconds, as the billing job's final
 *   join and the reference model judge it) and by the expiry, whether or not its hour was swept yet.
 *   A value written before `last` was kept (10 bytes, or `last` 0) counts until its expiry alone;
 *   `hour` = floor(time of the event id / 1 h) (`eventIdTimeMs`: a ULID's or UUIDv7's time). The
 *   delivery key is a hash of (publisherId, type, eventId), so the same key always falls in the same
 *   bucket, whatever `ts` or impression id a resend carries. An event id without a plausible time
 *   (2020–2199: a client with an odd clock; a pixel's id is a ULID of its token's expiry less 24 h)
 *   falls in one fixed bucket, `NO_TIME_BUCKET`, which lives on while such traffic goes on: each
 *   sweep removes its keys past their own expiry, a bounded number looked at per batch (removals
 *   travel in the changelog as deletes of `D:<bucket>:<24 hex>`). Keys of one hour sit
 *   together, so inserts land in the current hours' pages. The keys of hours of event-id time live
 *   in a ring of databases (`~deliveries.<hour mod 32>`, hour-slots.ts; state format 5), so a whole
 *   hour is expired by clearing its database when it holds that hour alone (else by deleting its
 *   key range); the headers, the no-time and the legacy buckets stay in `~deliveries`.
 * - bucket header `[0xff][hour: u32 BE]` → `[expiry: f64 BE]`: the latest `receivedAt + TTL` of the
 *   hour's keys. When the partition watermark passes it, the hour's range and header are deleted.
 *   Headers sort after every entry (hours stay below 2^31), and are few (one per hour of event-id
 *   time in flight), so all are kept in memory.
 * - the legacy bucket, `LEGACY_BUCKET`: delivery keys migrated from a format-1 store or changelog
 *   (`d:<key>` → offset, expired by the minute schedule; partition-store.ts), whose event-id time is
 *   unknown. Each keeps the expiry of its schedule minute; while the bucket exists, a lookup that
 *   misses its own hour probes it too; it is swept like any bucket once its header expiry passed.
 *
 * Keys without their second: an hour of event-id time that may hold 16-byte keys (a store upgraded
 * from format 5 or before, a changelog entry of an older build) has a marker `[0xfe][hour: u32 BE]`
 * in the main database; a lookup there that misses the 18-byte key reads the 16-byte one too. Both
 * forms' hash bytes feed the hour's one filter. The marker goes with its hour.
 *
 * The 12 key bytes are the first 96 bits of the delivery key, itself the first 128 bits of a
 * SHA-256 (schemas/src/keys.ts); a key that is not 32 hex characters is SHA-256 hashed first.
 * Collision arithmetic: two distinct deliveries are confused only when they fall in the same hour
 * bucket and share 96 bits; with n keys in one bucket the chance of any such pair is about
 * n² / 2^97, i.e. 6e-16 for 10 million keys in one partition-hour (10^14 / 1.6e29), so a year of
 * 64 partitions at that rate (5.6e5 bucket-hours) stays below 4e-10.
 *
 * Semantics: a later record with a key is `duplicate_delivery` when it reached the edge within the
 * dedupe horizon of the key's latest sighting (checked against the stored values, so the answer does
 * not depend on when the hour is swept; the hour is swept once the watermark passes the latest
 * expiry of its keys).
 *
 * In the changelog (state/changelog.ts) entries travel as strings: `D:<hour>:<24 hex>` → [offset, expiry s, last ms, second]
 * (an entry of two elements, written before `last` was kept, restores with `last` unknown; one
 * without its second, written before it was kept, restores as a 16-byte key; a build before it
 * reads the first three elements and ignores the second),
 * `D:<hour>` → the bucket's expiry, and a delete of `D:<hour>:*` deletes the whole hour (its own
 * key, so a later header put of a re-used hour does not replace the delete in the changelog fold).
 */
export const DELIVERY_DB = '~deliveries'
/** Whether a key of the root database names one of the delivery index's databases. */
export const isDeliveryDb = (k: unknown): boolean => k === DELIVERY_DB || isSlotOf(DELIVERY_DB, k)
export const DELIVERY_ENTRY_PREFIX = 'D:'
const WHOLE_HOUR = '*'
const KEY_BYTES = 16
/** A key of an hour of event-id time: the hour, the second within it, the 12 hash bytes. */
const TIMED_KEY_BYTES = 18
const OFFSET_BYTES = 6
const EXPIRY_BYTES = 4
const LAST_BYTES = 6
const VALUE_BYTES = OFFSET_BYTES + EXPIRY_BYTES + LAST_BYTES
/** A key's stored state: first offset, expiry (epoch seconds), latest receive time (epoch ms, 0: unknown). */
interface Sighting {
  offset: number
  expiry: number
  last: number
}

/** Whether a record received at `receivedAt` (epoch ms) is a re-delivery of the key `s` describes. */
function counts(s: Sighting, receivedAt: number): boolean {
  return Math.floor(receivedAt / 1000) <= s.expiry && (s.last === 0 || receivedAt - s.last <= DEDUPE_HORIZON_MS)
}

/**
 * A value of 12 bytes (offset, latest sighting) implies the expiry the default state lifetime gives
 * the latest sighting: every key of a processor with the default `ttlMs` has that expiry, so it need
 * not be stored (38 instead of 42 bytes per key in a B-tree page). A key whose expiry is any other
 * (another `ttlMs`, a key from before `last` was kept) keeps the full 16 bytes; 10 bytes are format 1's.
 */
const COMPACT_VALUE_BYTES = OFFSET_BYTES + LAST_BYTES
const impliedExpiry = (last: number): number => Math.floor((last + STATE_TTL_MS) / 1000)

function readValue(b: Buffer): Sighting {
  const offset = b.readUIntBE(0, OFFSET_BYTES)
  if (b.length === COMPACT_VALUE_BYTES) {
    const last = b.readUIntBE(OFFSET_BYTES, LAST_BYTES)
    return { offset, expiry: impliedExpiry(last), last }
  }
  return { offset, expiry: b.readUInt32BE(OFFSET_BYTES), last: b.length >= VALUE_BYTES ? b.readUIntBE(OFFSET_BYTES + EXPIRY_BYTES, LAST_BYTES) : 0 }
}

/** Writes a key's value at `at`, compact when its expiry is the implied one; answers its length. */
function writeValue(buf: Buffer, at: number, offset: number, expiry: number, last: number): number {
  buf.writeUIntBE(offset, at, OFFSET_BYTES)
  if (last !== 0 && expiry === impliedExpiry(last)) {
    buf.writeUIntBE(last, at + OFFSET_BYTES, LAST_BYTES)
    return COMPACT_VALUE_BYTES
  }
  buf.writeUInt32BE(expiry, at + OFFSET_BYTES)
  buf.writeUIntBE(last, at + OFFSET_BYTES + EXPIRY_BYTES, LAST_BYTES)
  return VALUE_BYTES
}
const HEADER = 0xff
/** Marker of an hour that may hold 16-byte keys (keys without their second). */
const UNTIMED = 0xfe
/** Slots a batch's sort key can tell apart (`write`): 2^21, so that 2^32 × this stays below 2^53. */
const SLOT_SPAN = 0x20_0000

/** Bucket of the delivery keys of event ids without a time. */
export const NO_TIME_BUCKET = 0x7fffffff
/** Bucket of the delivery keys migrated from format 1 (their event-id time is unknown). */
export const LEGACY_BUCKET = 0x7ffffffe

/**
 * Event-id times taken as times: anything else is no time (a client's clock far off, or a pixel
 * token whose expiry lies beyond 2200).
 */
const PLAUSIBLE_FROM_MS = Date.UTC(2020, 0, 1)
const PLAUSIBLE_TO_MS = Date.UTC(2200, 0, 1)
/** Keys of the no-time bucket looked at per sweep for their own expiry. */
const NO_TIME_SCAN = 20_000

/** The hour bucket of an event-id time (ms); `NO_TIME_BUCKET` when the id carries none (or none plausible). */
export const hourOf = (ms: number | undefined): number => (ms === undefined || !(ms >= PLAUSIBLE_FROM_MS && ms < PLAUSIBLE_TO_MS) ? NO_TIME_BUCKET : Math.floor(ms / HOUR_MS))

/** Crockford base32 digit values by char code (both cases; -1: not a ULID character). */
const CROCKFORD_VALUE = new Int8Array(128).fill(-1)
'0123456789ABCDEFGHJKMNPQRSTVWXYZ'.split('').forEach((ch, v) => {
  CROCKFORD_VALUE[ch.charCodeAt(0)] = v
  CROCKFORD_VALUE[ch.toLowerCase().charCodeAt(0)] = v
})

/**
 * The time a delivery key's bucket follows: its event id's time (a function of the key's own
 * input), as `eventIdTimeMs` answers it; a ULID is decoded here without its regular expression
 * (one pass over its characters), anything else goes to `eventIdTimeMs`.
 */
export function deliveryTimeOf(eventId: string): number | undefined {
  if (eventId.length !== 26) return eventIdTimeMs(eventId)
  let ms = 0
  for (let i = 0; i < 26; i++) {
    const c = eventId.charCodeAt(i)
    const v = c < 128 ? CROCKFORD_VALUE[c]! : -1
    if (v < 0) return undefined
    if (i < 10) ms = ms * 32 + v
  }
  return ms
}

/** Lower-case hex digit values by char code (-1: not one). */
const HEX_VALUE = new Int8Array(128).fill(-1)
'0123456789abcdef'.split('').forEach((ch, v) => (HEX_VALUE[ch.charCodeAt(0)] = v))

/**
 * When `key` is 32 lower-case hex characters, writes the bytes of its first 24 at `at` and answers
 * true; otherwise false (bytes at `at` may then be written: the caller overwrites them). One pass in
 * JavaScript: about half the CPU of a substring plus Buffer's native hex write, on every lookup and
 * every key written.
 */
function writeHex12(buf: Buffer, at: number, key: string): boolean {
  if (key.length !== 32) return false
  for (let i = 0; i < 32; i += 2) {
    const a = key.charCodeAt(i)
    const b = key.charCodeAt(i + 1)
    const hi = a < 128 ? HEX_VALUE[a]! : -1
    const lo = b < 128 ? HEX_VALUE[b]! : -1
    if ((hi | lo) < 0) return false
    if (i < 24) buf[at + (i >> 1)] = (hi << 4) | lo
  }
  return true
}

/** Writes the key's 12 hash bytes at `at`: its first 96 bits when it is 32 lower-case hex characters, else those of its SHA-256. */
function writeHash12(buf: Buffer, at: number, key: string): void {
  if (!writeHex12(buf, at, key)) createHash('sha256').update(key).digest().copy(buf, at, 0, 12)
}

function writeKey(buf: Buffer, at: number, hour: number, key: string): void {
  buf.writeUInt32BE(hour, at)
  writeHash12(buf, at + 4, key)
}

/** Writes `[hour][second][12 hash bytes]` at `at`. */
function writeTimedKey(buf: Buffer, at: number, hour: number, second: number, key: string): void {
  writeHash12(buf, at + 6, key)
  buf.writeUInt32BE(hour, at)
  buf.writeUInt16BE(second, at + 4)
}

/** Whether `hour` is an hour of event-id time (its keys carry their second), not a bucket of the main database. */
const isTimed = (hour: number): boolean => hour !== NO_TIME_BUCKET && hour !== LEGACY_BUCKET

/** The second of `ms` within `hour` (0 for a bucket without a time). */
const secondOf = (hour: number, ms: number | undefined): number => (ms === undefined || !isTimed(hour) ? 0 : Math.floor((ms - hour * HOUR_MS) / 1000))

/** The offset of a stored key's 12 hash bytes. */
const hashAt = (key: Buffer): number => (key.length === TIMED_KEY_BYTES ? 6 : 4)

function headerKey(hour: number, tag = HEADER): Buffer {
  const b = Buffer.allocUnsafe(5)
  b[0] = tag
  b.writeUInt32BE(hour, 1)
  return b
}

function f64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8)
  b.writeDoubleBE(n, 0)
  return b
}

export class DeliveryIndex {
  /** Committed bucket expiries, by hour. */
  private readonly buckets = new Map<number, number>()
  /**
   * This batch's keys first seen (or seen again): a slot per key, by hour then key, and per slot
   * its hour (-1: its hour was swept this batch), key, first offset, expiry (epoch seconds) and
   * latest receive time (epoch ms, 0: unknown), in arrays rather than an object or a map per key.
   */
  private readonly added = new Map<number, Map<string, number>>()
  private readonly slotHour: number[] = []
  private readonly slotKey: string[] = []
  private readonly slotOffset: number[] = []
  private readonly slotExpiry: number[] = []
  private readonly slotLast: number[] = []
  /** The second of the slot's event-id time within its hour. */
  private readonly slotSecond: number[] = []
  /** The last hour `slotsOf` answered, and its map (most records of a batch share an hour). */
  private lastHour = -1
  private lastSlots: Map<string, number> | undefined
  private readonly raised = new Map<number, number>()
  private readonly swept = new Set<number>()
  /**
   * Keys of the no-time bucket past their own expiry, removed this batch (by their 24 hex
   * characters): that bucket lives on while such traffic goes on, so its keys go one by one.
   */
  private readonly removals = new Map<string, Buffer>()
  /** Where the next sweep goes on looking through the no-time bucket (undefined: its start). */
  private cursor: Buffer | undefined
  private readonly probe = Buffer.alloc(KEY_BYTES)
  private readonly timedProbe = Buffer.alloc(TIMED_KEY_BYTES)
  private readonly scratchKey = Buffer.alloc(TIMED_KEY_BYTES)
  /** Hours of event-id time that may hold 16-byte keys (their markers). */
  private readonly untimed = new Set<number>()
  /**
   * A Bloom filter per committed hour (key-filter.ts): most keys are new, and their lookup then
   * skips the B-tree. Its hashes are key bytes 4–11, already SHA-256 output.
   */
  private readonly filters = new Map<number, KeyFilter>()
  /** Builds of filters dropped with their hour (`filterBuilds`). */
  private retiredBuilds = 0

  /**
   * `db`: bucket headers, and the keys of the no-time and legacy buckets (removed one by one);
   * `slots`: the keys of every hour of event-id time, in a ring of databases (hour-slots.ts), so an
   * expired hour that holds its database alone is cleared at once.
   */
  constructor(
    private readonly db: Database<Buffer, Buffer>,
    private readonly slots: ReadonlyArray<Database<Buffer, Buffer>>,
  ) {
    for (const { key, value } of db.getRange({ start: Buffer.from([UNTIMED]) })) {
      if (key.length === 5 && key[0] === HEADER) this.buckets.set(key.readUInt32BE(1), value.readDoubleBE(0))
      else if (key.length === 5 && key[0] === UNTIMED) this.untimed.add(key.readUInt32BE(1))
    }
  }

  /**
   * Marks every hour of event-id time held as one that may hold 16-byte keys (a store of format 5
   * or before, inside its upgrade's write transaction, after `moveToSlots`); answers how many.
   */
  markUntimedHours(): number {
    let n = 0
    for (const hour of this.buckets.keys()) {
      if (!isTimed(hour)) continue
      this.markUntimed(hour)
      n++
    }
    return n
  }

  private markUntimed(hour: number): void {
    if (this.untimed.has(hour)) return
    void this.db.put(headerKey(hour, UNTIMED), Buffer.alloc(0))
    this.untimed.add(hour)
  }

  static open(root: RootDatabase): DeliveryIndex {
    return new DeliveryIndex(root.openDB<Buffer, Buffer>({ name: DELIVERY_DB, keyEncoding: 'binary', encoding: 'binary', compression: false }), openHourSlots(root, DELIVERY_DB))
  }

  /** The database of `hour`'s keys. */
  private dbOf(hour: number): Database<Buffer, Buffer> {
    return hour === NO_TIME_BUCKET || hour === LEGACY_BUCKET ? this.db : this.slots[hour % HOUR_SLOTS]!
  }

  /**
   * Moves the keys of hours of event-id time that a store of format 4 or before kept in the main
   * database into their slots (inside the upgrade's write transaction); answers how many.
   */
  moveToSlots(): number {
    let n = 0
    for (const { key, value } of this.db.getRange({ start: bucketStart(0), end: bucketStart(LEGACY_BUCKET) })) {
      if (key.length !== KEY_BYTES) continue
      void this.dbOf(key.readUInt32BE(0)).put(Buffer.from(key), Buffer.from(value))
      void this.db.remove(Buffer.from(key))
      n++
    }
    this.filters.clear()
    return n
  }

  /**
   * Offset where `key` (its event id's time `idTime`, `deliveryTimeOf`) was first seen, this batch
   * included, for a record the edge received at `receivedAt`; undefined when never, or when that
   * sighting's TTL ended before it.
   */
  firstSeen(key: string, idTime: number | undefined, receivedAt: number): number | undefined {
    const hour = hourOf(idTime)
    const slot = this.slotsOf(hour)?.get(key)
    if (slot !== undefined) return this.slotCounts(slot, receivedAt) ? this.slotOffset[slot] : undefined
    return this.committedSighting(hour, secondOf(hour, idTime), key, receivedAt)?.offset
  }

  /** This batch's slots of `hour` (undefined: none yet). */
  private slotsOf(hour: number): Map<string, number> | undefined {
    if (hour === this.lastHour) return this.lastSlots
    const m = this.added.get(hour)
    if (m !== undefined) {
      this.lastHour = hour
      this.lastSlots = m
    }
    return m
  }

  /** Whether a record received at `receivedAt` is a re-delivery of the key in `slot`. */
  private slotCounts(slot: number, receivedAt: number): boolean {
    const last = this.slotLast[slot]!
    return Math.floor(receivedAt / 1000) <= this.slotExpiry[slot]! && (last === 0 || receivedAt - last <= DEDUPE_HORIZON_MS)
  }

  /** The committed state of `key` that makes a record received at `receivedAt` a re-delivery, if any. */
  private committedSighting(hour: number, second: number, key: string, receivedAt: number): Sighting | undefined {
    const found = this.lookup(hour, second, key, receivedAt)
    // Keys migrated from format 1 sit in the legacy bucket while it lasts.
    return found === undefined && this.buckets.has(LEGACY_BUCKET) ? this.lookup(LEGACY_BUCKET, 0, key, receivedAt) : found
  }

  private lookup(hour: number, second: number, key: string, receivedAt: number): Sighting | undefined {
    // No committed bucket for the hour: nothing to read.
    if (!this.buckets.has(hour) || this.swept.has(hour)) return undefined
    const timed = isTimed(hour)
    const probe = timed ? this.timedProbe : this.probe
    if (timed) writeTimedKey(probe, 0, hour, second, key)
    else writeKey(probe, 0, hour, key)
    // Both forms carry the same 12 hash bytes: the hour's filter answers for either.
    const at = hashAt(probe)
    if (!this.filterOf(hour).mayHave(probe.readUInt32LE(at), probe.readUInt32LE(at + 4) | 1)) return undefined
    if (!timed && this.removals.size > 0 && hour === NO_TIME_BUCKET && this.removals.has(probe.toString('hex', 4))) return undefined
    let s = this.read(hour, probe)
    // An hour that may hold keys without their second: the 16-byte key too, and of both the one
    // sighted last (both are there when a key written before the upgrade was seen again).
    if (timed && this.untimed.has(hour)) {
      writeKey(this.probe, 0, hour, key)
      const old = this.read(hour, this.probe)
      if (old !== undefined && (s === undefined || old.last > s.last)) s = old
    }
    return s !== undefined && counts(s, receivedAt) ? s : undefined
  }

  /** The sighting stored under `key` in `hour`'s database. (getBinaryFast's buffer is only good until the next read: decoded at once.) */
  private read(hour: number, key: Buffer): Sighting | undefined {
    const b = this.dbOf(hour).getBinaryFast(key)
    return b === undefined ? undefined : readValue(b)
  }

  private filterOf(hour: number): KeyFilter {
    let f = this.filters.get(hour)
    if (!f) {
      f = new KeyFilter(
        lmdbKeySource<Buffer>(this.dbOf(hour), () => bucketStart(hour), () => bucketStart(hour + 1), (key, add) => {
          const at = hashAt(key)
          add(key.readUInt32LE(at), key.readUInt32LE(at + 4) | 1)
        }),
        () => liveHourCapacity(this.filters, hour),
      )
      this.filters.set(hour, f)
    }
    return f
  }

  /**
   * Writes a format-1 delivery key into the legacy bucket (inside the migration's write transaction):
   * first seen at `offset`, counting for records received until `expirySec` (epoch seconds).
   */
  putLegacy(key: string, offset: number, expirySec: number): void {
    const k = Buffer.allocUnsafe(KEY_BYTES)
    writeKey(k, 0, LEGACY_BUCKET, key)
    const v = Buffer.allocUnsafe(VALUE_BYTES)
    void this.db.put(k, v.subarray(0, writeValue(v, 0, offset, expirySec, 0)))
    this.filters.get(LEGACY_BUCKET)?.invalidate()
    const exp = Math.max(this.buckets.get(LEGACY_BUCKET) ?? -Infinity, expirySec * 1000)
    void this.db.put(headerKey(LEGACY_BUCKET), f64(exp))
    this.buckets.set(LEGACY_BUCKET, exp)
  }

  /**
   * Marks `key` (event-id time `idTime`) first seen at `offset`, received at `receivedAt` (unknown:
   * it counts until its expiry alone), kept at least until the watermark passes `expiresAt`.
   */
  add(key: string, idTime: number | undefined, offset: number, expiresAt: number, receivedAt?: number): void {
    const hour = hourOf(idTime)
    let m = this.slotsOf(hour)
    if (m === undefined) {
      this.added.set(hour, (m = new Map()))
      this.lastHour = hour
      this.lastSlots = m
    }
    let slot = m.get(key)
    if (slot === undefined) {
      slot = this.slotHour.length
      m.set(key, slot)
      this.slotHour.push(hour)
      this.slotKey.push(key)
      this.slotOffset.push(offset)
      this.slotExpiry.push(Math.floor(expiresAt / 1000))
      this.slotLast.push(receivedAt ?? 0)
      this.slotSecond.push(secondOf(hour, idTime))
    } else {
      this.slotOffset[slot] = offset
      this.slotExpiry[slot] = Math.floor(expiresAt / 1000)
      this.slotLast[slot] = receivedAt ?? 0
    }
    if (this.swept.size > 0) this.swept.delete(hour)
    if (expiresAt > (this.raised.get(hour) ?? this.buckets.get(hour) ?? -Infinity)) this.raised.set(hour, expiresAt)
  }

  /**
   * A re-delivery of `key` (a duplicate of the sighting `firstSeen` answered) reached the edge at
   * `receivedAt`: the horizon slides to it (rules/rules.ts), and the key is kept until `expiresAt`
   * at least. The first sighting's offset stays.
   */
  resighted(key: string, idTime: number | undefined, receivedAt: number, expiresAt: number): void {
    const hour = hourOf(idTime)
    const slot = this.slotsOf(hour)?.get(key)
    if (slot !== undefined) {
      if (!this.slotCounts(slot, receivedAt)) return
      this.add(key, idTime, this.slotOffset[slot]!, Math.max(expiresAt, this.slotExpiry[slot]! * 1000), Math.max(receivedAt, this.slotLast[slot]!))
      return
    }
    const s = this.committedSighting(hour, secondOf(hour, idTime), key, receivedAt)
    if (s === undefined) return
    this.add(key, idTime, s.offset, Math.max(expiresAt, s.expiry * 1000), Math.max(receivedAt, s.last))
  }

  /**
   * Expires every hour whose bucket expiry the watermark passed, and in the no-time bucket (which
   * lives on while such keys keep coming) the keys whose own expiry it passed, looking at up to
   * `NO_TIME_SCAN` of them per call; answers the number of hours and keys.
   */
  sweep(watermark: number): number {
    let n = 0
    if (this.buckets.has(NO_TIME_BUCKET) && !this.swept.has(NO_TIME_BUCKET)) n += this.removeExpiredKeys(NO_TIME_BUCKET, watermark)
    const due = (hour: number, committed: number | undefined): boolean => Math.max(committed ?? -Infinity, this.raised.get(hour) ?? -Infinity) <= watermark
    for (const [hour, exp] of this.buckets) {
      if (this.swept.has(hour) || !due(hour, exp)) continue
      this.drop(hour)
      n++
    }
    for (const hour of [...this.raised.keys()]) {
      if (this.buckets.has(hour) || !due(hour, undefined)) continue
      this.drop(hour)
      n++
    }
    return n
  }

  private removeExpiredKeys(hour: number, watermark: number): number {
    const start = this.cursor ?? bucketStart(hour)
    let scanned = 0
    let last: Buffer | undefined
    let n = 0
    for (const { key, value } of this.db.getRange({ start, end: bucketStart(hour + 1), limit: NO_TIME_SCAN })) {
      scanned++
      last = key
      if (readValue(value).expiry * 1000 > watermark) continue
      const hex = key.toString('hex', 4)
      if (this.removals.has(hex)) continue
      this.removals.set(hex, Buffer.from(key))
      n++
    }
    // Past the last key looked at (a longer key sorts right after it), or from the start again.
    this.cursor = scanned < NO_TIME_SCAN || last === undefined ? undefined : Buffer.concat([last, Buffer.from([0])])
    return n
  }

  private drop(hour: number): void {
    const m = this.added.get(hour)
    if (m !== undefined) for (const slot of m.values()) this.slotHour[slot] = -1
    this.added.delete(hour)
    if (hour === this.lastHour) this.forgetLastHour()
    this.raised.delete(hour)
    if (this.buckets.has(hour)) this.swept.add(hour)
  }

  private forgetLastHour(): void {
    this.lastHour = -1
    this.lastSlots = undefined
  }

  /** Number of keys first seen in this batch. */
  pendingKeys(): number {
    let n = 0
    for (const m of this.added.values()) n += m.size
    return n
  }

  /** This batch's changes as changelog entries (see the layout above). */
  pendingEntries(): StateEntry[] {
    // Removals first, as `write` does: a key first seen again after its removal is kept.
    const out: StateEntry[] = []
    for (const hex of this.removals.keys()) out.push([`${DELIVERY_ENTRY_PREFIX}${NO_TIME_BUCKET}:${hex}`])
    for (const [hour, m] of this.added) {
      for (const [key, slot] of m) {
        const value = [this.slotOffset[slot]!, this.slotExpiry[slot]!, this.slotLast[slot]!]
        if (isTimed(hour)) value.push(this.slotSecond[slot]!)
        out.push([`${DELIVERY_ENTRY_PREFIX}${hour}:${this.hex(hour, key)}`, value])
      }
    }
    for (const [hour, exp] of this.raised) out.push([`${DELIVERY_ENTRY_PREFIX}${hour}`, exp])
    for (const hour of this.swept) out.push([`${DELIVERY_ENTRY_PREFIX}${hour}:${WHOLE_HOUR}`])
    return out
  }

  private hex(hour: number, key: string): string {
    writeKey(this.probe, 0, hour, key)
    return this.probe.toString('hex', 4)
  }

  /** Writes this batch's changes; call inside the partition's write transaction, then `committed()`. */
  write(): void {
    for (const k of this.removals.values()) void this.db.remove(k)
    // Expired hours first: a slot cleared with one goes before any put into the slot (a swept hour
    // that gets a key this batch is no longer swept, `add`).
    const cleared = new Set<number>()
    for (const hour of this.swept) this.removeHour(hour, cleared)
    const n = this.slotHour.length
    // One buffer for the batch's values (lmdb may reference value bytes until the transaction is
    // written); the key bytes are copied by lmdb as it encodes the key, so one scratch key serves
    // the puts. The keys go in in key order, hour by hour: delivery keys are
    // hashes, so in arrival order each put lands on another leaf page of the hour's range; in key
    // order the B-tree is walked once, left to right.
    const keys = Buffer.allocUnsafe(n * TIMED_KEY_BYTES)
    const values = Buffer.allocUnsafe(n * VALUE_BYTES)
    const sorted = n < SLOT_SPAN
    for (const hour of [...this.added.keys()].sort((a, b) => a - b)) {
      const slots = this.added.get(hour)!
      const db = this.dbOf(hour)
      const timed = isTimed(hour)
      const width = timed ? TIMED_KEY_BYTES : KEY_BYTES
      const hash = timed ? 6 : 4
      const key = this.scratchKey.subarray(0, width)
      let filter = this.filters.get(hour)
      if (filter === undefined && !this.buckets.has(hour)) {
        // An hour with no committed key yet: its filter starts empty and gets every key as it is written.
        filter = this.filterOf(hour)
        filter.startEmpty()
      }
      const order = new Float64Array(slots.size)
      let i = 0
      for (const slot of slots.values()) {
        const at = slot * TIMED_KEY_BYTES
        if (timed) writeTimedKey(keys, at, hour, this.slotSecond[slot]!, this.slotKey[slot]!)
        else writeKey(keys, at, hour, this.slotKey[slot]!)
        filter?.add(keys.readUInt32LE(at + hash), keys.readUInt32LE(at + hash + 4) | 1)
        // The key's first 32 bits after its hour (its second, then hash bits: time order within
        // the hour), then its slot: its order, and where it is (exact below 2^53).
        // A batch of more slots than SLOT_SPAN (no processor batch is) keeps its arrival order.
        order[i++] = sorted ? keys.readUInt32BE(at + 4) * SLOT_SPAN + slot : slot
      }
      if (sorted) order.sort()
      for (let j = 0; j < order.length; j++) {
        const slot = sorted ? order[j]! % SLOT_SPAN : order[j]!
        const at = slot * VALUE_BYTES
        const length = writeValue(values, at, this.slotOffset[slot]!, this.slotExpiry[slot]!, this.slotLast[slot]!)
        keys.copy(key, 0, slot * TIMED_KEY_BYTES, slot * TIMED_KEY_BYTES + width)
        void db.put(key, values.subarray(at, at + length))
      }
    }
    for (const [hour, exp] of this.raised) void this.db.put(headerKey(hour), f64(exp))
  }

  /**
   * Deletes `hour`'s keys and header (inside a write transaction). An hour of event-id time is
   * dropped from its slot (hour-slots.ts `dropHour`: the slot cleared when no other committed hour
   * shares it), unless `cleared` is undefined: then key by key (a restore, whose keys may not all
   * have their header yet); the no-time and legacy buckets key by key.
   */
  private removeHour(hour: number, cleared?: Set<number>): void {
    if (cleared !== undefined && hour !== NO_TIME_BUCKET && hour !== LEGACY_BUCKET) dropHour(this.slots, hour, this.buckets.keys(), this.swept, cleared)
    else {
      const db = this.dbOf(hour)
      for (const k of db.getKeys({ start: bucketStart(hour), end: bucketStart(hour + 1) })) void db.remove(k)
    }
    void this.db.remove(headerKey(hour))
    if (this.untimed.has(hour)) void this.db.remove(headerKey(hour, UNTIMED))
  }

  /** After the transaction of `write()` committed: the batch's changes become the committed view. */
  committed(): void {
    for (const [hour, exp] of this.raised) this.buckets.set(hour, exp)
    for (const hour of this.swept) {
      this.buckets.delete(hour)
      this.untimed.delete(hour)
      this.retiredBuilds += this.filters.get(hour)?.builds ?? 0
      this.filters.delete(hour)
    }
    this.discard()
  }

  discard(): void {
    this.removals.clear()
    this.added.clear()
    this.forgetLastHour()
    this.slotHour.length = 0
    this.slotKey.length = 0
    this.slotOffset.length = 0
    this.slotExpiry.length = 0
    this.slotLast.length = 0
    this.slotSecond.length = 0
    this.raised.clear()
    this.swept.clear()
  }

  /** Applies changelog entries of this family (inside the restore transaction); answers false for any other key. */
  restoreEntry(e: StateEntry): boolean {
    const k = e[0]
    if (!k.startsWith(DELIVERY_ENTRY_PREFIX)) return false
    this.filters.clear() // keys written around the filters: built again on the next lookup
    const rest = k.slice(DELIVERY_ENTRY_PREFIX.length)
    const colon = rest.indexOf(':')
    const hour = Number(colon < 0 ? rest : rest.slice(0, colon))
    if (colon < 0) {
      if (e.length === 1) void this.db.remove(headerKey(hour))
      else void this.db.put(headerKey(hour), f64(e[1] as number))
      if (e.length === 1) this.buckets.delete(hour)
      else this.buckets.set(hour, e[1] as number)
      return true
    }
    if (rest.slice(colon + 1) === WHOLE_HOUR) {
      if (e.length === 1) {
        this.removeHour(hour)
        this.buckets.delete(hour)
        this.untimed.delete(hour)
      }
      return true
    }
    const hex = rest.slice(colon + 1)
    if (e.length === 1) {
      // Only the no-time bucket's keys are removed one by one (16 bytes).
      const key = Buffer.alloc(KEY_BYTES)
      key.writeUInt32BE(hour, 0)
      key.write(hex, 4, 12, 'hex')
      void this.dbOf(hour).remove(key)
      return true
    }
    const [offset, expiry, last, second] = e[1] as [number, number, number?, number?]
    const withSecond = isTimed(hour) && typeof second === 'number' && second >= 0 && second < HOUR_MS / 1000
    const key = Buffer.alloc(withSecond ? TIMED_KEY_BYTES : KEY_BYTES)
    key.writeUInt32BE(hour, 0)
    if (withSecond) key.writeUInt16BE(second, 4)
    key.write(hex, hashAt(key), 12, 'hex')
    // An entry of a build before seconds were kept: its key without one, in an hour marked for it.
    if (!withSecond && isTimed(hour)) this.markUntimed(hour)
    const v = Buffer.alloc(VALUE_BYTES)
    void this.dbOf(hour).put(key, v.subarray(0, writeValue(v, 0, offset, expiry, last ?? 0)))
    return true
  }

  /** Deletes every entry (inside the restore transaction, when the store is rebuilt from a snapshot). */
  clear(): void {
    for (const k of this.db.getKeys({})) void this.db.remove(k)
    for (const slot of this.slots) void slot.clearAsync()
    this.buckets.clear()
    this.untimed.clear()
    this.filters.clear()
  }

  /**
   * Every committed entry as a changelog entry (snapshots). Keys without their second come first:
   * one seen again since has both forms under one entry key, and the fold keeps the later.
   */
  *entries(): Generator<StateEntry> {
    for (const timed of [false, true]) for (const { key, value } of this.entryRows()) {
      if ((key.length === TIMED_KEY_BYTES) !== timed) continue
      if (key.length === 5 && key[0] === HEADER) yield [`${DELIVERY_ENTRY_PREFIX}${key.readUInt32BE(1)}`, value.readDoubleBE(0)]
      else if (key.length === 5 && key[0] === UNTIMED) continue // travels as entries without their second
      else {
        const s = readValue(value)
        const at = hashAt(key)
        yield [`${DELIVERY_ENTRY_PREFIX}${key.readUInt32BE(0)}:${key.toString('hex', at)}`, at === 6 ? [s.offset, s.expiry, s.last, key.readUInt16BE(4)] : [s.offset, s.expiry, s.last]]
      }
    }
  }

  /** Every row of the main database and the slots. */
  private *entryRows(): Generator<{ key: Buffer; value: Buffer }> {
    yield* this.db.getRange({})
    for (const slot of this.slots) yield* slot.getRange({})
  }

  /** Filters built by reading their hour's keys back from the database, so far (tests, metrics). */
  filterBuilds(): number {
    let n = this.retiredBuilds
    for (const f of this.filters.values()) n += f.builds
    return n
  }

  /** Bytes of the Bloom filter of `hour` (0: none built), or of every hour's when not given (tests, metrics). */
  filterBytes(hour?: number): number {
    if (hour !== undefined) return this.filters.get(hour)?.byteLength ?? 0
    let n = 0
    for (const f of this.filters.values()) n += f.byteLength
    return n
  }

  /** Committed keys (headers not counted) and the bytes of this database's B-tree pages. */
  stats(): { keys: number; buckets: number; usedBytes: number } {
    const { entries, usedBytes } = treeStats([this.db, ...this.slots])
    return { keys: entries - this.buckets.size - this.untimed.size, buckets: this.buckets.size, usedBytes }
  }
}
