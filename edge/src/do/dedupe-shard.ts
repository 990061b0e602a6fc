import { DurableObject } from 'cloudflare:workers'
import type { Env } from '../env.js'
import { RotatingBloom } from '../lib/bloom.js'
import { settingsFrom } from '../lib/settings.js'

/** Exact keys are remembered for the design's dedupe window. */
export const DEDUPE_TTL_MS = 24 * 60 * 60_000
const SWEEP_EVERY_MS = 10 * 60_000

export type DedupeVerdict = 'new' | 'duplicate'

export interface DedupeStats {
  checks: number
  bloomMaybe: number
  exactDuplicates: number
  bloomFalsePositives: number
  /** Keys checked again before their first request confirmed them: judged new (core dedupes). */
  pendingRetries: number
  bloomBytes: number
  keysKept: number
}

/**
 * One dedupe shard: an in-memory two-generation Bloom filter in front of an exact key table in the
 * object's SQLite storage. "Definitely new" never reads the table; "maybe" is confirmed there, so
 * only exact repeats are called duplicates. The filter is rebuilt from the table when the object
 * starts, so a restart does not forget recent keys.
 *
 * A key is first stored *pending* by `check`, and only *confirmed* once its event is durable (in the
 * log or the Spool). Only confirmed keys make a duplicate: if the request died in between (client
 * gone, isolate evicted, proxy and Spool down), the client's retry is judged new and forwarded
 * again, so a 409 always means "this event is stored", never "this event was lost".
 */
export class DedupeShard extends DurableObject<Env> {
  private readonly bloom: RotatingBloom
  private lastSweep = 0
  private readonly counters = { checks: 0, bloomMaybe: 0, exactDuplicates: 0, bloomFalsePositives: 0, pendingRetries: 0 }

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    const s = settingsFrom(env)
    this.bloom = new RotatingBloom({ capacity: s.bloomCapacity, fpRate: s.bloomFpRate, generationMs: DEDUPE_TTL_MS / 2 })
    void ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql
      sql.exec('CREATE TABLE IF NOT EXISTS dedupe_keys (key TEXT PRIMARY KEY, seen_at INTEGER NOT NULL, committed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID')
      sql.exec('CREATE INDEX IF NOT EXISTS dedupe_keys_by_time ON dedupe_keys (seen_at)')
      sql.exec('CREATE TABLE IF NOT EXISTS signatures (sig TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID')
      for (const row of sql.exec<{ key: string }>('SELECT key FROM dedupe_keys WHERE seen_at > ?', Date.now() - DEDUPE_TTL_MS)) {
        this.bloom.add(row.key)
      }
    })
  }

  /**
   * Judges each key in order and stores the new ones as pending, in one transaction with two SQL
   * statements whatever the number of keys (the keys travel as one JSON array through `json_each`,
   * so there is no per-key statement and no bound-parameter limit). A key repeated inside the same
   * call is a duplicate the second time (both travel in the same request).
   */
  check(keys: string[]): DedupeVerdict[] {
    const now = Date.now()
    const sql = this.ctx.storage.sql
    const verdicts: DedupeVerdict[] = new Array<DedupeVerdict>(keys.length)
    const firsts: { i: number; key: string; maybe: boolean }[] = []
    const inCall = new Set<string>()
    const maybe: string[] = []
    keys.forEach((key, i) => {
      this.counters.checks++
      if (inCall.has(key)) {
        verdicts[i] = 'duplicate'
        return
      }
      inCall.add(key)
      const m = this.bloom.has(key)
      if (m) maybe.push(key)
      firsts.push({ i, key, maybe: m })
    })
    const fresh: string[] = []
    this.ctx.storage.transactionSync(() => {
      const rows = new Map<string, { seen_at: number; committed: number }>()
      if (maybe.length > 0) {
        for (const row of sql.exec<{ key: string; seen_at: number; committed: number }>(
          'SELECT key, seen_at, committed FROM dedupe_keys WHERE key IN (SELECT value FROM json_each(?))', JSON.stringify(maybe),
        )) rows.set(row.key, row)
      }
      for (const { i, key, maybe: m } of firsts) {
        verdicts[i] = 'new'
        if (m) {
          this.counters.bloomMaybe++
          const row = rows.get(key)
          if (row && row.seen_at > now - DEDUPE_TTL_MS) {
            if (row.committed === 1) {
              this.counters.exactDuplicates++
              verdicts[i] = 'duplicate'
              continue
            }
            // Pending: its first request has not confirmed it (yet, or ever). Judged new again.
            this.counters.pendingRetries++
            fresh.push(key)
            continue
          }
          this.counters.bloomFalsePositives++
        }
        fresh.push(key)
        this.bloom.add(key)
      }
      if (fresh.length > 0) {
        sql.exec(
          'INSERT INTO dedupe_keys (key, seen_at, committed) SELECT value, ?, 0 FROM json_each(?) WHERE true ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at, committed = 0',
          now, JSON.stringify(fresh),
        )
      }
    })
    this.sweep(now)
    return verdicts
  }

  /** Marks keys whose events are now durable: from here on a repeat is a duplicate. One statement. */
  confirm(keys: string[]): number {
    if (keys.length === 0) return 0
    return this.ctx.storage.sql.exec('UPDATE dedupe_keys SET committed = 1 WHERE key IN (SELECT value FROM json_each(?))', JSON.stringify(keys)).rowsWritten
  }

  /** Read-only state of each key: never seen (or expired), pending, or confirmed. */
  peek(keys: string[]): ('absent' | 'pending' | 'confirmed')[] {
    const rows = new Map<string, { seen_at: number; committed: number }>()
    for (const row of this.ctx.storage.sql.exec<{ key: string; seen_at: number; committed: number }>(
      'SELECT key, seen_at, committed FROM dedupe_keys WHERE key IN (SELECT value FROM json_each(?))', JSON.stringify(keys),
    )) rows.set(row.key, row)
    const now = Date.now()
    return keys.map((key) => {
      const row = rows.get(key)
      if (!row || row.seen_at <= now - DEDUPE_TTL_MS) return 'absent'
      return row.committed === 1 ? 'confirmed' : 'pending'
    })
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
    const keysKept = this.ctx.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM dedupe_keys').one().n
    return { ...this.counters, bloomBytes: this.bloom.byteLength, keysKept }
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return
    this.lastSweep = now
    const sql = this.ctx.storage.sql
    sql.exec('DELETE FROM dedupe_keys WHERE seen_at <= ?', now - DEDUPE_TTL_MS)
    sql.exec('DELETE FROM signatures WHERE expires_at <= ?', now)
  }
}
