import type { ReasonCode } from '@adc/schemas'
import { mkdirSync } from 'node:fs'
import { open, type RootDatabase } from 'lmdb'
import { BurstCounters, BURST_DB, BURST_ENTRY_PREFIX } from './burst-counters.js'
import { DeliveryIndex, isDeliveryDb } from './delivery-index.js'
import { decodeImpression } from './impression-codec.js'
import { HOUR_MS, PARTITION_MAX_DBS } from './hour-slots.js'
import { fallbackHour, ImpressionIndex, isImpressionDb } from './impression-index.js'
import { impressionScope, joinDeadlineKey, pad, SCOPE_SEPARATOR, waitingKey, WATERMARK_KEY, type ImpressionState } from './keys.js'
import { STATE_TTL_MS } from '../rules/rules.js'

/** The offset range a batch covers; written before its sink writes so a replay re-forms the same batch. */
export interface BatchIntent {
  minOffset: number
  maxOffset: number
}

const DELETED = Symbol('deleted')
const META_APPLIED = '~applied'
const META_INTENT = '~intent'
const META_CHANGELOG = '~changelog'
const META_FORMAT = '~format'
/** Until when (watermark, epoch ms) impression states of format 2, keyed by the id alone, may still be read. */
const META_UNSCOPED = '~unscoped'
/**
 * The on-disk layout of a partition store.
 * - 2: delivery keys and IVT burst counters in binary databases of their own (delivery-index.ts,
 *   burst-counters.ts) instead of `d:` and `b:` entries. A store without the marker that holds
 *   anything was written by format 1: it is upgraded when opened, in one transaction
 *   (`upgradeFormat1`), as are format-1 entries of a restored changelog.
 * - 3: impression states, waiting clicks and join deadlines keyed by the impression's scope
 *   (publisher and id, keys.ts `impressionScope`) instead of its id alone. A format-2 store is
 *   upgraded when opened (`upgradeScopes`), as are format-2 entries of a restored changelog.
 * - 4: a delivery key's value may be 12 bytes, its expiry implied by its latest sighting
 *   (delivery-index.ts). A format-3 store is read as it is; only its marker changes, so that a
 *   build of format 3, which would misread such a value, refuses the store.
 * - 5: impression states in binary databases of their own, bucketed by the hour they expire in
 *   (impression-index.ts), instead of `i:` entries expired by the minute schedule (`x:` lists);
 *   both indexes keep their hours in rings of named databases (hour-slots.ts), so an expired hour
 *   is cleared at once. A store of format 2 to 4 is upgraded when opened (`moveImpressions`,
 *   `DeliveryIndex.moveToSlots`), as are the `i:` entries of a restored changelog (they are put
 *   into the index as they come).
 * - 6: impression states bucketed by the tenth of the hour they expire in, within the hour's range
 *   (impression-index.ts); delivery keys of an hour of event-id time carry the second of their
 *   event id's time after the hour (18 bytes, delivery-index.ts). A format-5 store is read as it is
 *   (its impression entries are read as their hour's oldest slice and go with it; its hours'
 *   16-byte delivery keys are read by their hour's marker, `markUntimedHours`), so that a build of
 *   format 5, which would misread both, refuses the store. Changelog entries keep their format: a
 *   delivery entry carries the second as a fourth element, which a build of format 5 ignores.
 * A store of any other format (a later build's) is refused (`StateFormatError`), never misread.
 */
export const STATE_FORMAT = 6
/**
 * The format of state entries as the changelog carries them (changelog.ts):
 * - 3: impression-keyed entries by scope;
 * - 4 (state format 5): impression states expire by their hour, which travels as a delete of
 *   `I:<hour>:*`, and no longer through the minute schedule. A build of entry format 3 would keep
 *   such states forever, so it refuses these entries (`StateFormatError`). (State format 4 changed
 *   only how a delivery key's value is stored on disk, not its entry.)
 */
export const ENTRY_FORMAT = 4

/** A state directory written in a later layout than this build's (reason code `state_format`). */
export class StateFormatError extends Error {
  readonly code = 'state_format' satisfies ReasonCode
}

/** Key families with few keys, read for every record: their committed keys are kept in memory. */
const SPARSE_PREFIXES = ['w:'] as const
const isSparse = (k: string): boolean => k.charCodeAt(0) === 0x77 /* w */ && k.charCodeAt(1) === 0x3a /* : */
/** Impression ids' state (`i:`, keys.ts): held by the impression index (impression-index.ts). */
const IMPRESSION_PREFIX = 'i:'
const isImpression = (k: string): boolean => k.charCodeAt(0) === 0x69 /* i */ && k.charCodeAt(1) === 0x3a /* : */

const isMeta = (k: unknown): boolean => k === META_APPLIED || k === META_INTENT || k === META_CHANGELOG || k === META_FORMAT || k === META_UNSCOPED || isDeliveryDb(k) || k === BURST_DB || isImpressionDb(k)

/** A key of the three impression-keyed families (`i:`, `w:`, `q:`) written before format 3: without a scope. */
const isUnscoped = (k: string): boolean => {
  const c = k.charCodeAt(0)
  return (c === 0x69 /* i */ || c === 0x77 /* w */ || c === 0x71 /* q */) && k.charCodeAt(1) === 0x3a /* : */ && !k.includes(SCOPE_SEPARATOR)
}

/** Whether an expiry schedule entry's value (as a changelog carries it) lists an impression state. */
const listsImpression = (v: unknown): boolean => (typeof v === 'string' || Array.isArray(v)) && expiryKeys(v as string | string[]).some((k) => typeof k === 'string' && isImpression(k))

/** Where this store stands in its partition's changelog (state/changelog.ts). */
export interface ChangelogPosition {
  /** Next changelog offset not yet reflected here. */
  next: number
  /** Owner whose records the changelog fold accepted last. */
  owner?: string
}

/**
 * An expiry schedule entry's value: its keys joined by newlines (one string for msgpack to copy,
 * instead of one string per key: about a quarter of the commit's CPU), or the array when a key
 * holds a newline itself. Entries written before hold arrays; `expiryKeys` reads both.
 */
export function expiryValue(keys: string[]): string | string[] {
  for (const k of keys) if (k.includes('\n')) return keys
  return keys.join('\n')
}

/** The keys of an expiry schedule entry, whichever form it was written in. */
export function expiryKeys(value: string | string[]): string[] {
  return typeof value === 'string' ? (value === '' ? [] : value.split('\n')) : value
}

/** What an upgrade from format 1 moved: delivery keys (to the legacy bucket) and IVT counters. */
export interface Format1Upgrade {
  deliveries: number
  counters: number
}

/**
 * What an upgrade to format 3 did: waiting-click lists and join deadlines re-keyed by scope (each
 * waiting click names its publisher), and impression states left under their id alone (they name no
 * publisher), read in place of a missing scoped state until the watermark passes their expiry.
 */
export interface ScopeUpgrade {
  waiting: number
  deadlines: number
  unscopedImpressions: number
}

export type StateUpgrade = Partial<Format1Upgrade> & ScopeUpgrade

/** A format-1 delivery key (`d:`) or IVT burst counter (`b:`). */
const isFormat1 = (k: string): boolean => (k.charCodeAt(0) === 0x64 /* d */ || k.charCodeAt(0) === 0x62 /* b */) && k.charCodeAt(1) === 0x3a /* : */

/** A state change: `[key, value]` puts, `[key]` deletes. */
export type StateEntry = [string] | [string, unknown]

/**
 * Partition-local processor state in LMDB (one environment per log partition, so a partition and
 * its state move together on reassignment).
 *
 * Writes made while processing a batch go to an in-memory overlay that reads see first; `commit`
 * writes the overlay and the batch's last offset (`applied`) in ONE LMDB transaction, and only after
 * every sink acknowledged the batch. So no state change (a key marked as seen, a click joined) ever
 * lands without the sink writes it caused, and a crash at any point leaves the state of a batch
 * boundary: records up to `applied` are done (skipped on replay), the rest is recomputed from the
 * same state and gives the same verdicts and the same insert tokens.
 */
export class PartitionStore {
  private readonly overlay = new Map<string, unknown>()
  /**
   * Committed keys of the sparse families (`w:`, clicks waiting for their impression): a read of one
   * that is not here answers at once, without an LMDB lookup (most impressions have no waiting click).
   */
  private readonly sparse = new Set<string>()
  /** Keys this batch scheduled for expiry, by due minute; written as one entry per minute at commit. */
  private readonly expiries = new Map<number, string[]>()
  private applied: number
  /**
   * The watermark (`WATERMARK_KEY`, expiry.ts) as committed, and as this batch moved it: read and
   * moved by every record, so kept in fields rather than in the overlay; committed like an entry.
   */
  private committedWatermark = 0
  private batchWatermark: number | undefined
  private intent: BatchIntent | undefined
  private changelog: ChangelogPosition
  /** Delivery dedupe keys (binary layout, committed in the same transactions). */
  readonly deliveries: DeliveryIndex
  /** IVT burst counters per minute (binary layout, committed in the same transactions). */
  readonly bursts: BurstCounters
  /** Impression states by expiry hour (binary layout, committed in the same transactions). */
  readonly impressions: ImpressionIndex

  /** What opening this store upgraded (undefined when it was of the current format or empty). */
  readonly upgraded: StateUpgrade | undefined
  /**
   * While impression states of format 2 (keyed by the id alone) may be live: the watermark until
   * which a scoped lookup that finds nothing reads the id's old key (`upgradeScopes`).
   */
  private unscopedUntil: number | undefined

  private constructor(private readonly db: RootDatabase, readonly partition: number, readonly path: string) {
    const format = db.get(META_FORMAT) as number | undefined
    if (format !== undefined && format !== STATE_FORMAT && format !== 2 && format !== 3 && format !== 4 && format !== 5) {
      throw new StateFormatError(`state at ${path} has format ${String(format)}; this build reads format ${STATE_FORMAT} (and upgrades formats 1 to 5)`)
    }
    this.deliveries = DeliveryIndex.open(db)
    this.bursts = BurstCounters.open(db)
    this.impressions = ImpressionIndex.open(db)
    if (format !== STATE_FORMAT) {
      let format1 = false
      if (format === undefined) for (const k of db.getKeys({ limit: 4 })) if (!isDeliveryDb(k) && k !== BURST_DB && !isImpressionDb(k)) format1 = true
      this.upgraded = db.transactionSync(() => {
        const f1 = format1 ? this.upgradeFormat1() : undefined
        // An empty store (no marker, nothing in it) is new: nothing to upgrade.
        // Format 5 keeps its layout (see STATE_FORMAT).
        if ((format !== undefined && format !== 5) || format1) this.moveImpressions()
        if (format !== undefined && format !== 5) this.deliveries.moveToSlots()
        // Their delivery keys carry no second: each hour they are in is marked so.
        if (format !== undefined) this.deliveries.markUntimedHours()
        const scopes = format === 2 || format1 ? this.upgradeScopes() : undefined
        void db.put(META_FORMAT, STATE_FORMAT)
        return scopes ? { ...f1, ...scopes } : undefined
      })
      this.impressions.reload()
    }
    this.unscopedUntil = db.get(META_UNSCOPED) as number | undefined
    this.loadSparse()
    this.committedWatermark = (db.get(WATERMARK_KEY) as number | undefined) ?? 0
    this.applied = (db.get(META_APPLIED) as number | undefined) ?? -1
    this.intent = db.get(META_INTENT) as BatchIntent | undefined
    this.changelog = (db.get(META_CHANGELOG) as ChangelogPosition | undefined) ?? { next: 0 }
  }

  static open(path: string, partition: number): PartitionStore {
    mkdirSync(path, { recursive: true })
    // compression off: values are a few bytes; the key prefix ordering matters for range scans.
    // Named databases: the delivery and impression indexes' hour slots, and the others (hour-slots.ts).
    const db = open({ path, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3, maxDbs: PARTITION_MAX_DBS })
    try {
      return new PartitionStore(db, partition, path)
    } catch (err) {
      void db.close()
      throw err
    }
  }

  /** The partition watermark: the largest edge `receivedAt` seen (this batch included); 0 before any. */
  watermark(): number {
    return this.batchWatermark ?? this.committedWatermark
  }

  /** Moves the watermark to `ms` when that is later. */
  advanceWatermark(ms: number): void {
    if (ms > (this.batchWatermark ?? this.committedWatermark)) this.batchWatermark = ms
  }

  get<T>(key: string): T | undefined {
    if (key === WATERMARK_KEY) return this.watermark() as T
    const v = this.overlay.get(key)
    if (v === DELETED) return undefined
    if (v !== undefined) return v as T
    if (isSparse(key) && !this.sparse.has(key)) return undefined
    if (isImpression(key)) {
      const found = this.impressions.get(key.slice(IMPRESSION_PREFIX.length)) as T | undefined
      return found === undefined && this.unscopedUntil !== undefined ? this.unscopedImpression<T>(key) : found
    }
    return this.db.get(key) as T | undefined
  }

  /**
   * The state a format-2 store kept for a scoped impression key's id alone, while such states may be
   * live. They name no publisher: until they expire, the id's old state stands for every scope of it
   * that has none of its own (as it did before the upgrade); the first write moves it to the scope.
   */
  private unscopedImpression<T>(key: string): T | undefined {
    const at = key.indexOf(SCOPE_SEPARATOR)
    if (at < 0 || this.watermark() > this.unscopedUntil!) return undefined
    return this.get<T>(`${IMPRESSION_PREFIX}${key.slice(at + 1)}`)
  }

  private loadSparse(): void {
    this.sparse.clear()
    for (const prefix of SPARSE_PREFIXES) for (const k of this.db.getKeys({ start: prefix, end: `${prefix}\uffff` })) this.sparse.add(k as string)
  }

  put(key: string, value: unknown): void {
    if (key === WATERMARK_KEY) this.batchWatermark = value as number
    else this.overlay.set(key, value)
  }

  remove(key: string): void {
    this.overlay.set(key, DELETED)
  }

  /**
   * Schedules `key` for deletion once the watermark passes `dueMs` (minute granularity). Stored as
   * one `x:<minute>:<batch max offset>` entry per minute and batch holding all its keys, so expiry
   * costs no extra LMDB key per deduplicated key.
   */
  expireAt(dueMs: number, key: string): void {
    const minute = Math.floor(dueMs / 60_000)
    const list = this.expiries.get(minute)
    if (list) list.push(key)
    else this.expiries.set(minute, [key])
  }

  /**
   * Entries with `start <= key < end` in key order, committed state merged with this batch's overlay.
   * Not for impression states (`i:`), which the impression index holds by hour, not in key order.
   */
  range<T>(start: string, end: string, limit: number): Array<[string, T]> {
    if (start < `${IMPRESSION_PREFIX}\uffff` && end > IMPRESSION_PREFIX) throw new Error(`range ${start}..${end} covers impression states, which are not read in key order`)
    const merged = new Map<string, unknown>()
    for (const { key, value } of this.db.getRange({ start, end, limit })) merged.set(key as string, value)
    for (const [k, v] of this.overlay) if (k >= start && k < end) merged.set(k, v)
    const out: Array<[string, T]> = []
    for (const k of [...merged.keys()].sort()) {
      const v = merged.get(k)
      if (v === DELETED) continue
      out.push([k, v as T])
      if (out.length >= limit) break
    }
    return out
  }

  /** Last offset whose effects are in this state (and in every sink); -1 when none. */
  appliedOffset(): number {
    return this.applied
  }

  pendingIntent(): BatchIntent | undefined {
    return this.intent
  }

  /** Durably records the range of the batch about to be written (before any sink write). */
  async writeIntent(intent: BatchIntent, changelog?: ChangelogPosition): Promise<void> {
    await this.db.transaction(() => {
      void this.db.put(META_INTENT, intent)
      if (changelog) void this.db.put(META_CHANGELOG, changelog)
    })
    await this.db.flushed
    this.intent = intent
    if (changelog) this.changelog = changelog
  }

  changelogPosition(): ChangelogPosition {
    return { ...this.changelog }
  }

  /**
   * The batch's state changes as `commit(maxOffset)` will write them (the overlay plus the expiry
   * schedule entries), for the changelog.
   */
  pendingEntries(maxOffset: number): StateEntry[] {
    // The impression index's dropped hours go before the batch's puts, as `commit` writes them.
    const out: StateEntry[] = [...this.deliveries.pendingEntries(), ...this.bursts.pendingEntries(), ...this.impressions.pendingEntries()]
    for (const [k, v] of this.overlay) out.push(v === DELETED ? [k] : [k, v])
    if (this.batchWatermark !== undefined) out.push([WATERMARK_KEY, this.batchWatermark])
    for (const [minute, keys] of this.expiries) out.push([`x:${pad(minute, 10)}:${pad(maxOffset)}`, expiryValue(keys)])
    return out
  }

  /**
   * Writes state restored from the changelog in one transaction: changed entries, `applied`, the
   * pending intent (or none) and the new changelog position. Only outside a batch (the overlay is empty).
   */
  async restore(r: { entries: Iterable<StateEntry>; applied: number; intent: BatchIntent | undefined; changelog: ChangelogPosition; reset?: boolean }): Promise<void> {
    if (this.overlay.size > 0 || this.expiries.size > 0 || this.batchWatermark !== undefined || this.deliveries.pendingKeys() > 0 || this.bursts.pendingKeys() > 0) throw new Error('restore while a batch is open')
    await this.db.transaction(() => {
      if (r.reset) {
        for (const k of this.db.getKeys({})) if (!isDeliveryDb(k) && k !== BURST_DB && !isImpressionDb(k) && k !== META_FORMAT) void this.db.remove(k)
        this.deliveries.clear()
        this.bursts.clear()
        this.impressions.clear()
      }
      let format1 = false
      let unscoped = false
      let scheduled = false
      // A state without an expiry goes to the hour of the watermark as it was, plus the lifetime.
      const fallback = fallbackHour((this.db.get(WATERMARK_KEY) as number | undefined) ?? 0, STATE_TTL_MS)
      for (const e of r.entries) {
        if (this.deliveries.restoreEntry(e) || this.bursts.restoreEntry(e)) continue
        // A format-1 delivery key or counter, or a format-2 impression-keyed entry (written by an
        // older build): applied as it was, upgraded below.
        if (isFormat1(e[0])) format1 = true
        if (isUnscoped(e[0])) unscoped = true
        if (e.length === 2 && e[0].startsWith('x:') && listsImpression(e[1])) scheduled = true
        if (this.impressions.restoreEntry(e, fallback)) continue
        if (e.length === 1) void this.db.remove(e[0])
        else void this.db.put(e[0], e[1])
      }
      if (format1) this.upgradeFormat1()
      // Schedule entries of an older build may list impression states: the index expires them by hour.
      // (Only then: the scan reads the whole schedule, which the edge-stats partitions keep large.)
      if (scheduled) this.moveImpressions()
      if (format1 || unscoped) this.upgradeScopes()
      void this.db.put(META_APPLIED, r.applied)
      if (r.intent) void this.db.put(META_INTENT, r.intent)
      else void this.db.remove(META_INTENT)
      void this.db.put(META_CHANGELOG, r.changelog)
    })
    await this.db.flushed
    this.impressions.reload()
    this.loadSparse()
    this.unscopedUntil = this.db.get(META_UNSCOPED) as number | undefined
    this.committedWatermark = (this.db.get(WATERMARK_KEY) as number | undefined) ?? 0
    this.applied = r.applied
    this.intent = r.intent
    this.changelog = r.changelog
  }

  /**
   * Keys format-2 entries of the impression families by scope (inside a write transaction; reads
   * see its writes):
   * - a waiting-click list `w:<id>` becomes one list per publisher of its clicks (each click's
   *   envelope names it), `w:<scope>`;
   * - a join deadline `q:<due>:<id>` becomes one per publisher with clicks waiting on the id (one
   *   with none is dropped: the join's sweep skips a deadline without a list);
   * - impression states `i:<id>` name no publisher: they stay, and `~unscoped` records the latest
   *   expiry among them, until which a scoped lookup that finds nothing reads them (`get`).
   * Idempotent: scoped keys are left as they are.
   */
  private upgradeScopes(): ScopeUpgrade {
    const publishersOf = new Map<string, string[]>()
    let waiting = 0
    for (const { key, value } of this.db.getRange({ start: 'w:', end: 'w:\uffff' })) {
      const k = key as string
      if (!isUnscoped(k)) continue
      const id = k.slice(2)
      // Only lists of waiting clicks move (each names its publisher); anything else stays as it is.
      const clicks = value as Array<{ envelope?: { event?: { publisherId?: unknown } } }>
      if (!Array.isArray(clicks) || !clicks.every((w) => typeof w?.envelope?.event?.publisherId === 'string')) continue
      const byPublisher = new Map<string, unknown[]>()
      for (const w of clicks) {
        const p = w.envelope!.event!.publisherId as string
        const list = byPublisher.get(p)
        if (list) list.push(w)
        else byPublisher.set(p, [w])
      }
      for (const [p, list] of byPublisher) void this.db.put(waitingKey(impressionScope(p, id)), list)
      publishersOf.set(id, [...byPublisher.keys()])
      void this.db.remove(k)
      waiting++
    }
    let deadlines = 0
    for (const k of this.db.getKeys({ start: 'q:', end: 'q:\uffff' })) {
      const key = k as string
      if (!isUnscoped(key)) continue
      const due = Number(key.slice(2, 2 + 15))
      const id = key.slice(2 + 15 + 1)
      for (const p of publishersOf.get(id) ?? []) void this.db.put(joinDeadlineKey(due, impressionScope(p, id)), null)
      void this.db.remove(key)
      deadlines++
    }
    const fallbackExpiry = ((this.db.get(WATERMARK_KEY) as number | undefined) ?? 0) + STATE_TTL_MS
    let unscopedImpressions = 0
    let until = -Infinity
    // Impression states are in the index by now (`moveImpressions` runs first).
    for (const [name, value] of this.impressions.names()) {
      if (name.includes(SCOPE_SEPARATOR)) continue
      unscopedImpressions++
      until = Math.max(until, (value as ImpressionState | undefined)?.ex ?? fallbackExpiry)
    }
    if (unscopedImpressions > 0) void this.db.put(META_UNSCOPED, Math.max(until, (this.db.get(META_UNSCOPED) as number | undefined) ?? -Infinity))
    return { waiting, deadlines, unscopedImpressions }
  }

  /**
   * Moves format-1 entries to the current layout (inside a write transaction; reads see its writes):
   * - delivery keys `d:<key>` → first-seen offset go to the delivery index's legacy bucket (their
   *   event-id time is unknown), each with the expiry of the schedule minute that lists it
   *   (`x:<minute>:…`; the end of that minute, when format 1 dropped it) or, if none does, the
   *   watermark plus the TTL;
   * - IVT counters `b:<kind>:<value>:<minute>` → count go to the burst counters;
   * - both leave the expiry schedule (their entries are rewritten without them).
   */
  private upgradeFormat1(): Format1Upgrade {
    const due = this.takeOffSchedule(isFormat1, (k) => k.startsWith('d:'))
    const fallback = Math.floor((((this.db.get(WATERMARK_KEY) as number | undefined) ?? 0) + STATE_TTL_MS) / 1000)
    let deliveries = 0
    for (const { key, value } of this.db.getRange({ start: 'd:', end: 'd:\uffff' })) {
      const minute = due.get(key as string)
      this.deliveries.putLegacy((key as string).slice(2), value as number, minute === undefined ? fallback : minute * 60 + 59)
      void this.db.remove(key)
      deliveries++
    }
    let counters = 0
    for (const { key, value } of this.db.getRange({ start: 'b:', end: 'b:\uffff' })) {
      const k = key as string
      const kindEnd = k.indexOf(':', 2)
      const minuteAt = k.lastIndexOf(':')
      if (kindEnd > 2 && minuteAt > kindEnd) {
        this.bursts.restoreEntry([`${BURST_ENTRY_PREFIX}${k.slice(minuteAt + 1)}:${k.charAt(2)}${k.slice(kindEnd + 1, minuteAt)}`, value as number])
        counters++
      }
      void this.db.remove(key)
    }
    return { deliveries, counters }
  }

  /**
   * Takes the keys `taken` picks off the expiry schedule (`x:` lists; an entry left empty goes),
   * inside a write transaction; answers, for each of them `noted` picks, the latest minute that
   * listed it.
   */
  private takeOffSchedule(taken: (k: string) => boolean, noted: (k: string) => boolean): Map<string, number> {
    const due = new Map<string, number>()
    for (const { key, value } of this.db.getRange({ start: 'x:', end: 'x:\uffff' })) {
      const keys = expiryKeys(value as string | string[])
      const rest = keys.filter((k) => !taken(k))
      if (rest.length === keys.length) continue
      const minute = Number((key as string).slice(2, 12))
      for (const k of keys) if (noted(k)) due.set(k, Math.max(due.get(k) ?? 0, minute))
      if (rest.length === 0) void this.db.remove(key)
      else void this.db.put(key, expiryValue(rest))
    }
    return due
  }

  /**
   * Moves `i:` entries of the main database (formats 1 to 4) into the impression index, each to
   * the hour of its expiry (`ex`) or, a state without one, of the latest schedule minute that lists
   * it (the watermark plus the lifetime if none does), and takes impression keys off the expiry
   * schedule (`x:` lists): the index expires them by hour. Inside a write transaction; answers how
   * many states moved.
   */
  private moveImpressions(): number {
    const due = this.takeOffSchedule(isImpression, isImpression)
    const fallback = fallbackHour((this.db.get(WATERMARK_KEY) as number | undefined) ?? 0, STATE_TTL_MS)
    let n = 0
    for (const { key, value } of this.db.getRange({ start: IMPRESSION_PREFIX, end: `${IMPRESSION_PREFIX}\uffff` })) {
      const minute = due.get(key as string)
      this.impressions.put((key as string).slice(IMPRESSION_PREFIX.length), decodeImpression(value), minute === undefined ? fallback : Math.floor((minute * 60_000) / HOUR_MS))
      void this.db.remove(key)
      n++
    }
    return n
  }

  /** Every committed state entry (no metadata): a snapshot. Outside a batch. */
  *entries(): Generator<StateEntry> {
    for (const key of this.db.getKeys({})) {
      if (isMeta(key)) continue
      yield [key as string, this.db.get(key)]
    }
    yield* this.impressions.entries()
    yield* this.deliveries.entries()
    yield* this.bursts.entries()
  }

  /** Records a new changelog position without a state change (after writing a snapshot). */
  async setChangelogPosition(changelog: ChangelogPosition): Promise<void> {
    await this.db.put(META_CHANGELOG, changelog)
    await this.db.flushed
    this.changelog = changelog
  }

  /** Number of buffered writes of the current batch. */
  pendingWrites(): number {
    return this.overlay.size + (this.batchWatermark === undefined ? 0 : 1)
  }

  /** Forgets the current batch's writes (its sink writes failed; it will be recomputed). */
  discard(): void {
    this.batchWatermark = undefined
    this.overlay.clear()
    this.expiries.clear()
    this.deliveries.discard()
    this.bursts.discard()
    this.impressions.discard()
  }

  /** Writes the batch's state and marks `maxOffset` applied, atomically and durably. */
  async commit(maxOffset: number, changelog?: ChangelogPosition): Promise<void> {
    // Every format-2 impression state has expired once the watermark passed the latest expiry among them.
    const unscopedOver = this.unscopedUntil !== undefined && (this.batchWatermark ?? this.committedWatermark) > this.unscopedUntil
    const entries = [...this.overlay]
    if (this.batchWatermark !== undefined) entries.push([WATERMARK_KEY, this.batchWatermark])
    for (const [minute, keys] of this.expiries) entries.push([`x:${pad(minute, 10)}:${pad(maxOffset)}`, expiryValue(keys)])
    // A state without an expiry (none the pipeline writes) goes to the hour of the watermark plus the lifetime.
    const fallback = fallbackHour(this.batchWatermark ?? this.committedWatermark, STATE_TTL_MS)
    await this.db.transaction(() => {
      this.impressions.writeDrops()
      for (const [k, v] of entries) {
        if (isImpression(k)) {
          if (v === DELETED) this.impressions.remove(k.slice(IMPRESSION_PREFIX.length))
          else this.impressions.put(k.slice(IMPRESSION_PREFIX.length), v, fallback)
        } else if (v === DELETED) void this.db.remove(k)
        else void this.db.put(k, v)
      }
      this.deliveries.write()
      this.bursts.write()
      void this.db.put(META_APPLIED, maxOffset)
      void this.db.remove(META_INTENT)
      if (changelog) void this.db.put(META_CHANGELOG, changelog)
      if (unscopedOver) void this.db.remove(META_UNSCOPED)
    })
    await this.db.flushed
    if (unscopedOver) this.unscopedUntil = undefined
    this.deliveries.committed()
    this.bursts.committed()
    this.impressions.committed()
    for (const [k, v] of entries) {
      if (!isSparse(k)) continue
      if (v === DELETED) this.sparse.delete(k)
      else this.sparse.add(k)
    }
    this.overlay.clear()
    this.expiries.clear()
    if (this.batchWatermark !== undefined) this.committedWatermark = this.batchWatermark
    this.batchWatermark = undefined
    this.applied = maxOffset
    this.intent = undefined
    if (changelog) this.changelog = changelog
  }

  /** Committed entries and the bytes their B-tree pages use (for bytes-per-key measurements); delivery keys: `deliveries.stats()`. */
  stats(): { entries: number; usedBytes: number } {
    const st = this.db.getStats() as { pageSize: number; entryCount: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
    return { entries: st.entryCount, usedBytes: st.pageSize * (st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages) }
  }

  /** Committed keys starting with `prefix` (for measurements and tests; scans). */
  countPrefix(prefix: string): number {
    let n = 0
    for (const _ of this.db.getKeys({ start: prefix, end: prefix + '\uffff' })) n++
    return n
  }

  async close(): Promise<void> {
    this.overlay.clear()
    await this.db.close()
  }
}
