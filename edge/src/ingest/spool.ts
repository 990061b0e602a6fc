/**
 * The Spool Durable Object, one per publisher: the outbox for accepted events (and edge-stats
 * records) the REST proxy did not take, retried until delivered.
 */
import { DurableObject } from 'cloudflare:workers'
import type { Env } from '../env.js'
import { forward, proxyOptions, type ProxyRecord } from './forwarder.js'
import { nextRetryDelay } from './spool-policy.js'
import { settingsFrom } from '../settings.js'

export interface SpoolRecord extends ProxyRecord {
  topic: string
}

export interface SpoolStats {
  depth: number
  dead: number
  /** depth and dead rows per topic */
  byTopic: Record<string, { depth: number; dead: number }>
  delivered: number
  deliveryRounds: number
  failStreak: number
  nextAlarm: number | null
}

/** Records sent per alarm round and topic; one REST proxy call each. */
const ROUND_SIZE = 500
/** A record the proxy refuses this many times as non-retriable moves to `dead` (kept, visible). */
const MAX_FATAL_ATTEMPTS = 20

/**
 * The outbox: events that were accepted but could not be delivered to the REST proxy at once.
 * `enqueue` is durable when it returns (SQLite, committed before the RPC answers), which is what
 * lets the edge answer 202. An alarm delivers them in insertion order, one topic call per round,
 * deleting only records the proxy confirmed, and backs off exponentially while delivery fails.
 */
export class Spool extends DurableObject<Env> {
  private failStreak = 0
  private delivered = 0
  private deliveryRounds = 0

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    void ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql
      sql.exec(`CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        enqueued_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, fatal_attempts INTEGER NOT NULL DEFAULT 0)`)
      sql.exec(`CREATE TABLE IF NOT EXISTS dead (
        id INTEGER PRIMARY KEY, topic TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        enqueued_at INTEGER NOT NULL, attempts INTEGER NOT NULL, reason TEXT NOT NULL)`)
      sql.exec('CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)')
      this.failStreak = sql.exec<{ v: number }>("SELECT v FROM meta WHERE k = 'fail_streak'").toArray()[0]?.v ?? 0
    })
  }

  async enqueue(records: SpoolRecord[]): Promise<{ spooled: number; depth: number }> {
    const now = Date.now()
    const sql = this.ctx.storage.sql
    this.ctx.storage.transactionSync(() => {
      for (const r of records) {
        sql.exec('INSERT INTO outbox (topic, key, value, enqueued_at) VALUES (?, ?, ?, ?)', r.topic, r.key, JSON.stringify(r.value), now)
      }
    })
    // New work resets the backoff, so a record enqueued after a long outage is tried soon.
    const first = now + settingsFrom(this.env).spoolFirstRetryMs
    const current = await this.ctx.storage.getAlarm()
    if (current === null || current > first) await this.ctx.storage.setAlarm(first)
    return { spooled: records.length, depth: this.depth() }
  }

  async alarm(): Promise<void> {
    const s = settingsFrom(this.env)
    const sql = this.ctx.storage.sql
    const rows = sql
      .exec<{ id: number; topic: string; key: string; value: string; attempts: number; fatal_attempts: number }>(
        'SELECT id, topic, key, value, attempts, fatal_attempts FROM outbox ORDER BY id LIMIT ?', ROUND_SIZE)
      .toArray()
    if (rows.length === 0) return
    this.deliveryRounds++
    const topics = [...new Set(rows.map((r) => r.topic))]
    let failed = 0
    for (const topic of topics) {
      const batch = rows.filter((r) => r.topic === topic)
      const result = await forward(topic, batch, (r) => ({ key: r.key, value: JSON.parse(r.value) as unknown }), { ...proxyOptions(s), attempts: 1 })
      this.ctx.storage.transactionSync(() => {
        for (const r of result.delivered) sql.exec('DELETE FROM outbox WHERE id = ?', r.id)
        for (const { item: r, outcome } of result.undelivered) {
          const fatalAttempts = r.fatal_attempts + (outcome === 'fatal' ? 1 : 0)
          if (fatalAttempts >= MAX_FATAL_ATTEMPTS) {
            sql.exec('INSERT INTO dead (id, topic, key, value, enqueued_at, attempts, reason) SELECT id, topic, key, value, enqueued_at, attempts + 1, ? FROM outbox WHERE id = ?', 'proxy_rejected_record', r.id)
            sql.exec('DELETE FROM outbox WHERE id = ?', r.id)
          } else {
            sql.exec('UPDATE outbox SET attempts = attempts + 1, fatal_attempts = ? WHERE id = ?', fatalAttempts, r.id)
          }
        }
      })
      this.delivered += result.delivered.length
      failed += result.undelivered.length
    }
    this.failStreak = failed > 0 ? this.failStreak + 1 : 0
    sql.exec("INSERT INTO meta (k, v) VALUES ('fail_streak', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", this.failStreak)
    if (this.depth() > 0) {
      await this.ctx.storage.setAlarm(Date.now() + (failed > 0 ? nextRetryDelay(s.spoolFirstRetryMs, this.failStreak) : 0))
    }
  }

  depth(): number {
    return this.ctx.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM outbox').one().n
  }

  async stats(): Promise<SpoolStats> {
    const byTopic: Record<string, { depth: number; dead: number }> = {}
    const sql = this.ctx.storage.sql
    for (const r of sql.exec<{ topic: string; n: number }>('SELECT topic, count(*) AS n FROM outbox GROUP BY topic')) {
      byTopic[r.topic] = { depth: r.n, dead: 0 }
    }
    for (const r of sql.exec<{ topic: string; n: number }>('SELECT topic, count(*) AS n FROM dead GROUP BY topic')) {
      byTopic[r.topic] = { depth: byTopic[r.topic]?.depth ?? 0, dead: r.n }
    }
    return {
      byTopic,
      depth: this.depth(),
      dead: this.ctx.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM dead').one().n,
      delivered: this.delivered,
      deliveryRounds: this.deliveryRounds,
      failStreak: this.failStreak,
      nextAlarm: await this.ctx.storage.getAlarm(),
    }
  }
}
