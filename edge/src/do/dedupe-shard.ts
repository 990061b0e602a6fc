import { DurableObject } from 'cloudflare:workers'
import type { Env } from '../env.js'
import { BloomFilter, bloomSizing, RotatingBloom } from '../lib/bloom.js'
import { dedupeKeyTimeMs, timeBucketOfMs } from '../lib/dedupe-key.js'
import { settingsFrom } from '../lib/settings.js'

/** Exact keys are remembered for the design's dedupe window. */
export const DEDUPE_TTL_MS = 24 * 60 * 60_000
const SWEEP_EVERY_MS = 10 * 60_000
/** Keys filed further ahead than this (an event id minted by a clock far in the future) are not kept. */
export const DEDUPE_FUTURE_MS = 60 * 60_000

export type DedupeVerdict = 'new' | 'duplicate'

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
 * only exact repeats are called duplicates. The filter is rebuilt from the table when the object
 * starts, so a restart does not forget recent keys.
 *
 * Only *confirmed* keys are stored, and a key is confirmed only once its event is durable (in the
 * log or the Spool): `check` reads and never writes, `confirm` writes. A key checked but never
 * confirmed (client gone, isolate evicted, proxy and Spool down, or a retry racing its first
 * request) is judged new again and forwarded again, where core's exact dedupe drops the repeat;
 * so a 409 always means "this event is stored", never "this event was lost".
 *
 * Keys are time-prefixed (`dedupeKeyOf`: the event id's 1.024 s bucket, then the idempotency key),
 * and the table is the key alone (`dedupe_keys_v2`, WITHOUT ROWID, no index): inserts append near
 * the B-tree's right edge instead of scattering over its pages, and expiry deletes the key range
 * older than 24 h. A key is kept for 24 h after its event id's time; a key without the prefix, or
 * filed more than 24 h back or an hour ahead, is not kept (judged new each time: core's exact
 * dedupe has the last word). Rows of the earlier table (`dedupe_keys`: un-prefixed key, seen_at,
 * committed, with a time index) are still read until they expire, then the table is dropped.
 */
export class DedupeShard extends DurableObject<Env> {
  private readonly bloom: RotatingBloom
  /** Un-prefixed keys of the earlier table while it still holds live rows; undefined once dropped. */
  private legacy: BloomFilter | undefined
  private lastSweep = 0
  private readonly counters = { checks: 0, bloomMaybe: 0, exactDuplicates: 0, bloomFalsePositives: 0, confirms: 0, confirmCalls: 0 }

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    const s = settingsFrom(env)
    this.bloom = new RotatingBloom({ capacity: s.bloomCapacity, fpRate: s.bloomFpRate, generationMs: DEDUPE_TTL_MS / 2 })
    void ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql
      sql.exec('CREATE TABLE IF NOT EXISTS dedupe_keys_v2 (k TEXT PRIMARY KEY) WITHOUT ROWID')
      sql.exec('CREATE TABLE IF NOT EXISTS signatures (sig TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID')
      const now = Date.now()
      for (const row of sql.exec<{ k: string }>('SELECT k FROM dedupe_keys_v2 WHERE k >= ?', timeBucketOfMs(now - DEDUPE_TTL_MS))) this.bloom.add(row.k)
      this.openLegacy(now, s.bloomFpRate)
    })
  }

  /** Loads the earlier table's live keys into their own filter, or drops the table when none are left. */
  private openLegacy(now: number, fpRate: number): void {
    const sql = this.ctx.storage.sql
    const exists = sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'dedupe_keys'").one().n > 0
    if (!exists) return
    const live = sql.exec<{ key: string }>('SELECT key FROM dedupe_keys WHERE seen_at > ? AND committed = 1', now - DEDUPE_TTL_MS).toArray()
    if (live.length === 0) {
      sql.exec('DROP TABLE dedupe_keys')
      this.legacy = undefined
      return
    }
    this.legacy = new BloomFilter(bloomSizing(Math.max(100, live.length), fpRate))
    for (const row of live) this.legacy.add(row.key)
  }

  /**
   * Judges each key in order without writing anything: 'duplicate' only for a confirmed key inside
   * the 24 h window, or for a key repeated inside the same call (both travel in the same request).
   * The Bloom "maybe" keys are looked up in one statement (a JSON array through `json_each`, so no
   * per-key statement and no bound-parameter limit).
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
      if (this.bloom.has(key) || this.legacy?.has(key.slice(8))) maybe.push({ i, key })
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
   * Stores keys whose events are now durable: from here on a repeat is a duplicate until 24 h after
   * the event id's time. One statement for all keys; a key already held stays as it is. Keys outside
   * the window (see the class) are not kept. Returns the distinct keys kept.
   */
  confirm(keys: string[]): number {
    const now = Date.now()
    const distinct = [...new Set(keys)].filter((k) => {
      const t = dedupeKeyTimeMs(k)
      return t !== undefined && t > now - DEDUPE_TTL_MS && t <= now + DEDUPE_FUTURE_MS
    })
    this.counters.confirmCalls++
    if (distinct.length === 0) return 0
    this.ctx.storage.sql.exec('INSERT INTO dedupe_keys_v2 (k) SELECT value FROM json_each(?) WHERE true ON CONFLICT (k) DO NOTHING', JSON.stringify(distinct))
    for (const key of distinct) this.bloom.add(key)
    this.counters.confirms += distinct.length
    this.sweep(now)
    return distinct.length
  }

  /** Read-only: whether each key is confirmed (inside the 24 h window). */
  peek(keys: string[]): boolean[] {
    const held = this.confirmedAmong(keys)
    return keys.map((key) => held.has(key))
  }

  private confirmedAmong(keys: string[]): Set<string> {
    const now = Date.now()
    const sql = this.ctx.storage.sql
    const held = new Set<string>()
    for (const row of sql.exec<{ k: string }>(
      'SELECT k FROM dedupe_keys_v2 WHERE k IN (SELECT value FROM json_each(?)) AND k >= ?', JSON.stringify(keys), timeBucketOfMs(now - DEDUPE_TTL_MS),
    )) held.add(row.k)
    if (this.legacy) {
      const byPlain = new Map<string, string>()
      for (const k of keys) if (!held.has(k) && this.legacy.has(k.slice(8))) byPlain.set(k.slice(8), k)
      if (byPlain.size > 0) {
        for (const row of sql.exec<{ key: string }>(
          'SELECT key FROM dedupe_keys WHERE key IN (SELECT value FROM json_each(?)) AND committed = 1 AND seen_at > ?', JSON.stringify([...byPlain.keys()]), now - DEDUPE_TTL_MS,
        )) held.add(byPlain.get(row.key)!)
      }
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
    const legacyKept = this.legacy ? sql.exec<{ n: number }>('SELECT count(*) AS n FROM dedupe_keys').one().n : 0
    const keysKept = sql.exec<{ n: number }>('SELECT count(*) AS n FROM dedupe_keys_v2').one().n + legacyKept
    return { ...this.counters, bloomBytes: this.bloom.byteLength, keysKept }
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return
    this.lastSweep = now
    const sql = this.ctx.storage.sql
    sql.exec('DELETE FROM dedupe_keys_v2 WHERE k < ?', timeBucketOfMs(now - DEDUPE_TTL_MS))
    if (this.legacy) {
      sql.exec('DELETE FROM dedupe_keys WHERE seen_at <= ?', now - DEDUPE_TTL_MS)
      if (sql.exec<{ n: number }>('SELECT count(*) AS n FROM dedupe_keys WHERE committed = 1').one().n === 0) {
        sql.exec('DROP TABLE dedupe_keys')
        this.legacy = undefined
      }
    }
    sql.exec('DELETE FROM signatures WHERE expires_at <= ?', now)
  }
}
