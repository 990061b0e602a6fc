import { DurableObject } from 'cloudflare:workers'
import type { Env } from '../env.js'
import { RotatingBloom } from './bloom.js'
import { timeBucketOfMs } from './dedupe-key.js'
import { settingsFrom } from '../settings.js'

/** Exact keys are remembered for the design's dedupe window. */
export const DEDUPE_TTL_MS = 24 * 60 * 60_000
const SWEEP_EVERY_MS = 10 * 60_000
/** A key's time prefix further ahead than this (a clock far in the future) does not count as its time. */
export const DEDUPE_FUTURE_MS = 60 * 60_000

export type DedupeVerdict = 'new' | 'duplicate'

/** The time prefixes a shard files in `dedupe_keys_v2` now: after `after`, up to `until` (as text). */
interface TimeWindow {
  after: string
  until: string
}

const TIME_PREFIX = /^[0-9A-HJKMNP-TV-Z]{8}$/

export interface DedupeStats {
  checks: number
  bloomMaybe: number
  exactDuplicates: number
  bloomFalsePositives: number
  /** Keys confirmed (their events durable); a key confirmed twice counts twice. */
  confirms: number
  /** Confirm calls: fewer than the batches when the edge coalesces concurrent batches' confirms. */
  confirmCalls: number
  bloomBytes: number
  keysKept: number
}

/**
 * One dedupe shard: an in-memory two-generation Bloom filter in front of an exact key table in the
 * object's SQLite storage. "Definitely new" never reads the table; "maybe" is confirmed there, so
 * only exact repeats are called duplicates. The filter is rebuilt from the tables when the object
 * starts, so a restart does not forget recent keys.
 *
 * Only *confirmed* keys are stored, and a key is confirmed only once its event is durable (in the
 * log or the Spool): `check` reads and never writes, `confirm` writes. A key checked but never
 * confirmed (client gone, isolate evicted, proxy and Spool down, or a retry racing its first
 * request) is judged new again and forwarded again, where core's exact dedupe drops the repeat;
 * so a 409 always means "this event is stored", never "this event was lost".
 *
 * Keys come time-prefixed (`dedupeKeyOf`: the event id's 1.024 s bucket, then the idempotency key).
 * A key whose prefix lies within the window (24 h back, an hour ahead) is stored as it is in
 * `dedupe_keys_v2`, the key alone, WITHOUT ROWID and without an index: inserts append near the
 * B-tree's right edge instead of scattering over its pages, and expiry deletes the key range older
 * than 24 h; such a key is kept for 24 h after its event id's time. A key whose id carries no usable
 * time (ids derived from a token, of pixels and redirects; a client clock far off) is stored without
 * its prefix in `dedupe_keys` (key, seen_at, committed, with a time index) for 24 h after its
 * confirm: the table every key went to before, whose rows stay readable as they were. The filter
 * holds the idempotency key (without the prefix), so one filter covers both tables.
 */
export class DedupeShard extends DurableObject<Env> {
  private readonly bloom: RotatingBloom
  private lastSweep = 0
  private readonly counters = { checks: 0, bloomMaybe: 0, exactDuplicates: 0, bloomFalsePositives: 0, confirms: 0, confirmCalls: 0 }

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    const s = settingsFrom(env)
    this.bloom = new RotatingBloom({ capacity: s.bloomCapacity, fpRate: s.bloomFpRate, generationMs: DEDUPE_TTL_MS / 2 })
    void ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql
      sql.exec('CREATE TABLE IF NOT EXISTS dedupe_keys_v2 (k TEXT PRIMARY KEY) WITHOUT ROWID')
      sql.exec('CREATE TABLE IF NOT EXISTS dedupe_keys (key TEXT PRIMARY KEY, seen_at INTEGER NOT NULL, committed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID')
      sql.exec('CREATE INDEX IF NOT EXISTS dedupe_keys_by_time ON dedupe_keys (seen_at)')
      sql.exec('CREATE TABLE IF NOT EXISTS signatures (sig TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID')
      const now = Date.now()
      for (const row of sql.exec<{ k: string }>('SELECT k FROM dedupe_keys_v2 WHERE k >= ?', timeBucketOfMs(now - DEDUPE_TTL_MS))) this.bloom.add(row.k.slice(8))
      for (const row of sql.exec<{ key: string }>('SELECT key FROM dedupe_keys WHERE seen_at > ? AND committed = 1', now - DEDUPE_TTL_MS)) this.bloom.add(row.key)
    })
  }

  /**
   * Whether a key's time prefix lies inside the window (its bucket's start after now − 24 h, at most
   * an hour ahead), so it is filed in `dedupe_keys_v2`. Compared as text against the window's own
   * buckets (the prefix sorts as its time): the same answer as decoding it, without the decoding.
   */
  private timed(key: string, window: TimeWindow): boolean {
    const prefix = key.slice(0, 8)
    return prefix > window.after && prefix <= window.until && TIME_PREFIX.test(prefix)
  }

  private window(now: number): TimeWindow {
    return { after: timeBucketOfMs(now - DEDUPE_TTL_MS), until: timeBucketOfMs(now + DEDUPE_FUTURE_MS) }
  }

  /**
   * Judges each key in order without writing anything: 'duplicate' only for a confirmed key inside
   * the 24 h window, or for a key repeated inside the same call (both travel in the same request).
   * The Bloom "maybe" keys are looked up in one statement per table (a JSON array through
   * `json_each`, so no per-key statement and no bound-parameter limit).
   */
  check(keys: string[]): DedupeVerdict[] {
    const verdicts: DedupeVerdict[] = new Array<DedupeVerdict>(keys.length)
    const inCall = new Set<string>()
    const maybe: { i: number; key: string }[] = []
    keys.forEach((key, i) => {
      this.counters.checks++
      if (inCall.has(key)) {
        verdicts[i] = 'duplicate'
        return
      }
      inCall.add(key)
      verdicts[i] = 'new'
      if (this.bloom.has(key.slice(8))) maybe.push({ i, key })
    })
    if (maybe.length > 0) {
      this.counters.bloomMaybe += maybe.length
      const held = this.confirmedAmong(maybe.map((m) => m.key))
      for (const { i, key } of maybe) {
        if (held.has(key)) {
          this.counters.exactDuplicates++
          verdicts[i] = 'duplicate'
        } else {
          this.counters.bloomFalsePositives++
        }
      }
    }
    return verdicts
  }

  /**
   * Stores keys whose events are now durable: from here on a repeat is a duplicate for 24 h (see the
   * class for which 24 h). One statement per table for all keys; a key already held is kept (in
   * `dedupe_keys`, renewed). Returns the distinct keys.
   */
  confirm(keys: string[]): number {
    const distinct = [...new Set(keys)]
    this.counters.confirmCalls++
    if (distinct.length === 0) return 0
    const now = Date.now()
    const window = this.window(now)
    const timed: string[] = []
    const untimed: string[] = []
    for (const k of distinct) {
      if (this.timed(k, window)) timed.push(k)
      else untimed.push(k.slice(8))
      this.bloom.add(k.slice(8))
    }
    const sql = this.ctx.storage.sql
    if (timed.length > 0) sql.exec('INSERT INTO dedupe_keys_v2 (k) SELECT value FROM json_each(?) WHERE true ON CONFLICT (k) DO NOTHING', JSON.stringify(timed))
    if (untimed.length > 0) {
      sql.exec(
        'INSERT INTO dedupe_keys (key, seen_at, committed) SELECT value, ?, 1 FROM json_each(?) WHERE true ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at, committed = 1',
        now, JSON.stringify(untimed),
      )
    }
    this.counters.confirms += distinct.length
    this.sweep(now)
    return distinct.length
  }

  /** Read-only: whether each key is confirmed (inside the 24 h window). */
  peek(keys: string[]): boolean[] {
    const held = this.confirmedAmong(keys)
    return keys.map((key) => held.has(key))
  }

  /**
   * The keys among these that are confirmed: a timed key in `dedupe_keys_v2`, or any key (without its
   * prefix) in `dedupe_keys` (untimed keys, and rows written before `dedupe_keys_v2` existed).
   */
  private confirmedAmong(keys: string[]): Set<string> {
    const now = Date.now()
    const sql = this.ctx.storage.sql
    const held = new Set<string>()
    const window = this.window(now)
    const timed = keys.filter((k) => this.timed(k, window))
    if (timed.length > 0) {
      for (const row of sql.exec<{ k: string }>('SELECT k FROM dedupe_keys_v2 WHERE k IN (SELECT value FROM json_each(?))', JSON.stringify(timed))) held.add(row.k)
    }
    const byPlain = new Map<string, string>()
    for (const k of keys) if (!held.has(k)) byPlain.set(k.slice(8), k)
    if (byPlain.size > 0) {
      for (const row of sql.exec<{ key: string }>(
        'SELECT key FROM dedupe_keys WHERE key IN (SELECT value FROM json_each(?)) AND committed = 1 AND seen_at > ?', JSON.stringify([...byPlain.keys()]), now - DEDUPE_TTL_MS,
      )) held.add(byPlain.get(row.key)!)
    }
    return held
  }

  /** Records a request signature; false if it was already used and has not expired (a replay). */
  rememberSignature(sig: string, expiresAt: number): boolean {
    const now = Date.now()
    const sql = this.ctx.storage.sql
    const row = sql.exec<{ expires_at: number }>('SELECT expires_at FROM signatures WHERE sig = ?', sig).toArray()[0]
    if (row && row.expires_at > now) return false
    sql.exec('INSERT INTO signatures (sig, expires_at) VALUES (?, ?) ON CONFLICT (sig) DO UPDATE SET expires_at = excluded.expires_at', sig, expiresAt)
    return true
  }

  /** Whether a signature has been used (read-only; for the validate-signature route). */
  signatureUsed(sig: string): boolean {
    const row = this.ctx.storage.sql.exec<{ expires_at: number }>('SELECT expires_at FROM signatures WHERE sig = ?', sig).toArray()[0]
    return row !== undefined && row.expires_at > Date.now()
  }

  stats(): DedupeStats {
    const sql = this.ctx.storage.sql
    const keysKept = sql.exec<{ n: number }>('SELECT (SELECT count(*) FROM dedupe_keys_v2) + (SELECT count(*) FROM dedupe_keys) AS n').one().n
    return { ...this.counters, bloomBytes: this.bloom.byteLength, keysKept }
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return
    this.lastSweep = now
    const sql = this.ctx.storage.sql
    sql.exec('DELETE FROM dedupe_keys_v2 WHERE k < ?', timeBucketOfMs(now - DEDUPE_TTL_MS))
    sql.exec('DELETE FROM dedupe_keys WHERE seen_at <= ?', now - DEDUPE_TTL_MS)
    sql.exec('DELETE FROM signatures WHERE expires_at <= ?', now)
  }
}
