import { chTime, MAX_FUTURE_SKEW_MS } from '@adc/schemas'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import type { ClickHouseClient } from '@clickhouse/client'
import { sqlString } from '../clickhouse/client.js'
import type { Channel } from '@adc/schemas'
import { DAY_MS, dayStart } from './days.js'
import { dayPartitions, rangeVerdictParams, verdictParams, verdictsSql } from './final-join.js'
import type { IvtModel } from '../ivt/models/index.js'
import { quarantines } from '../ivt/rules.js'

/**
 * Runs an IVT model over the stored raw events of one UTC day and writes its decisions to
 * `ivt_decisions` under the model's version, for the final join to read (billing/final-join.ts).
 *
 * It scores what the stream scores (rules/rules.ts: counted impressions and joined clicks, with the
 * impression time of the join for the fast-click rule), in log order, counting bursts per partition,
 * IP prefix or user key and minute of edge receive time as the processor's counters do: over every
 * event that reaches the IVT step in the minute, whatever day its `ts` falls on. A day's events
 * reach the edge from a few minutes before it (clock skew) to 24 h after it, beside the events of the
 * days around it, so the events of the day before and the day after (and the skew) are counted too,
 * and only the day's own get decisions. The day's
 * rows are read from a work table in pages of `batchSize` events, each page's decisions written
 * before the next page is read, so Node's memory stays flat over a day of any size. Each write carries a deduplication token in its SQL (job, model,
 * day, batch number and a digest of the batch's decisions, never their decision time), so a job
 * resumed after a crash rewrites the same batches without doubling a decision, and a batch whose
 * events changed since (late events moved a page boundary) is written, not dropped as a repeat.
 * The job id (a reprocess, or a billing close keeping a promoted model) names the work table and
 * the tokens, so two jobs scoring one day never share either. Only events the
 * model scores above 0 get a row, as in the stream; no row means clean for that model.
 */
export interface ScoreDayOptions {
  client: ClickHouseClient
  database: string
  day: string
  model: IvtModel
  jobId: string
  /** Attribution windows the day is judged with (a reprocess with another rule version). */
  windowsMs?: Readonly<Record<Channel, number>>
  /** @default 50_000 */
  batchSize?: number
  /** Called after each written batch with the events scored so far. */
  onBatch?: (scored: number) => Promise<void> | void
  clock?: () => number
}

interface Row {
  event_key: string
  event_type: 'impression' | 'click'
  campaign_id: string
  publisher_id: string
  ts_ms: number
  r: number
  channel: string
  ua: string
  ip_prefix: string
  user_key: string
  prefetch: number
  /** The event said `consent: false`; a sender-side `uaHash` stood in for its agent (events_raw). */
  no_consent: number
  ua_hashed: number
  imp_ts: number | null
  log_partition: number
  /** Scored by IVT: an impression, or a click joined to its impression (past dedupe either way). */
  reaches_ivt: number | boolean
}

export async function countDayEvents(client: ClickHouseClient, database: string, day: string): Promise<number> {
  const rs = await client.query({
    query: `SELECT count() AS n FROM ${database}.events_raw WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')} AND sign = 1`,
    query_params: verdictParams({ day }, 0),
    format: 'JSONEachRow',
  })
  const [row] = await rs.json<{ n: number | string }>()
  return Number(row?.n ?? 0)
}

/**
 * `marks`: per log partition, the newest `processed_at` (epoch ms) among the day's rows this scoring
 * read; a row of the day written later was not scored (final-join.ts `scoredThrough`).
 */
export async function scoreDay(opts: ScoreDayOptions): Promise<{ scored: number; flagged: number; marks: Record<string, number> }> {
  const { client, database, day, model, jobId } = opts
  const batchSize = opts.batchSize ?? 50_000
  const clock = opts.clock ?? Date.now
  // The rules' verdicts for the day are computed once into a work table, then read in pages of
  // `batchSize` by log position: chDB hands a query's whole result over at once, so one streaming
  // query over a day would hold the day in memory.
  const work = `${database}.reprocess_${jobId.toLowerCase()}_${day.replaceAll('-', '')}`
  await client.command({ query: `DROP TABLE IF EXISTS ${work}` })
  // Every event whose receive minute the day's events may share: ts from a day (and the skew) before
  // the day to a day (and the skew) after it. Only the day's own (`in_target`) get decisions.
  const from = dayStart(day)
  const range: [number, number] = [from - DAY_MS - MAX_FUTURE_SKEW_MS, from + 2 * DAY_MS + MAX_FUTURE_SKEW_MS]
  // Every row of the range is kept (`counts_burst` says which count toward the bursts, at their log
  // position, as the stream counts each at its arrival; `reaches_ivt` which are scored): the newest
  // `processed_at` of the day's rows it read (`p_ms`) is what this scoring saw (the marks returned).
  const select = `SELECT event_key, event_type, campaign_id, publisher_id, ts_ms, r, channel, ua, ip_prefix, user_key, prefetch, no_consent, ua_hashed, imp_ts, log_partition, log_offset,
        ts_ms >= {dayFrom:Int64} AND ts_ms < {dayTo:Int64} AS in_target, reaches_ivt, counts_burst, p_ms
      FROM (${verdictsSql(database, false, true, opts.windowsMs)})`
  const params = (partition: number) => ({ ...rangeVerdictParams(range[0], range[1], {}, partition), dayFrom: from, dayTo: from + DAY_MS })
  await client.command({
    query: `CREATE TABLE ${work} ENGINE = MergeTree ORDER BY (log_partition, log_offset, event_key) AS ${select} LIMIT 0`,
    query_params: params(0),
  })
  for (const partition of await dayPartitions(client, database, day)) {
    await client.command({ query: `INSERT INTO ${work} ${select}`, query_params: params(partition) })
  }
  const marks: Record<string, number> = {}
  const marked = await (
    await client.query({ query: `SELECT log_partition AS p, max(p_ms) AS m FROM ${work} WHERE in_target GROUP BY log_partition`, format: 'JSONEachRow' })
  ).json<{ p: number; m: number | string }>()
  for (const { p, m } of marked) marks[Number(p)] = Number(m)
  const counters = new Map<number, Map<string, number>>()
  let partition = -1
  let newest = 0
  const bump = (m: number, k: string): number => {
    let c = counters.get(m)
    if (!c) counters.set(m, (c = new Map()))
    const n = (c.get(k) ?? 0) + 1
    c.set(k, n)
    return n
  }
  let pending: Record<string, unknown>[] = []
  let scored = 0
  let flagged = 0
  let batchNo = 0
  const decidedAt = chTime(clock())
  const flush = async (): Promise<void> => {
    if (pending.length > 0) {
      let body = ''
      const digest = createHash('sha256')
      for (const v of pending) {
        body += JSON.stringify(v) + '\n'
        digest.update(`${String(v.event_key)}\u001f${String(v.score)}\u001f${String(v.quarantined)}\u001f${(v.reasons as string[]).join(',')}\n`)
      }
      const token = `reprocess-${jobId}-${model.version}-${day}-${batchNo}-${digest.digest('hex').slice(0, 16)}`
      // The token in the SQL, not as a client setting: chDB keeps per-call settings for later inserts.
      const res = await client.exec({
        query: `INSERT INTO ${database}.ivt_decisions SETTINGS insert_deduplication_token=${sqlString(token)}, async_insert=0 FORMAT JSONEachRow`,
        values: Readable.from([body]),
      })
      res.stream.resume()
    }
    batchNo++
    pending = []
    await opts.onBatch?.(scored)
  }
  let after: [number, number, string] = [-1, -1, '']
  for (;;) {
    const page = await (
      await client.query({
        query: `SELECT * FROM ${work} WHERE (log_partition, log_offset, event_key) > ({p:UInt32}, {o:Int64}, {k:String}) AND counts_burst
          ORDER BY log_partition, log_offset, event_key LIMIT {n:UInt32}`,
        query_params: { p: Math.max(0, after[0]), o: after[1], k: after[2], n: batchSize },
        format: 'JSONEachRow',
      })
    ).json<Row & { log_offset: number; in_target: number | boolean }>()
    if (page.length === 0) break
    const last = page[page.length - 1]!
    after = [Number(last.log_partition), Number(last.log_offset), last.event_key]
    for (const row of page) {
      const m = Math.floor(Number(row.r) / 60_000)
      if (row.log_partition !== partition) {
        partition = row.log_partition
        counters.clear()
        newest = m
      } else if (m > newest + 60) {
        newest = m
        for (const k of counters.keys()) if (k < newest - 60) counters.delete(k)
      }
      const ipCount = row.ip_prefix ? bump(m, `ip|${row.ip_prefix}`) : 0
      const ukCount = row.user_key ? bump(m, `uk|${row.user_key}`) : 0
      // An event of the days around: counted, decided by the reprocess of its own day. A click that
      // never joined: counted, never scored.
      if (!(row.in_target === true || Number(row.in_target) === 1)) continue
      if (!(row.reaches_ivt === true || Number(row.reaches_ivt) === 1)) continue
      // The event as the stream scored it: an agent the sender hashed, or consent withheld, is no
      // missing agent (the hash itself is not stored; the rules never read it).
      const { score, reasons } = model.score(
        {
          type: row.event_type,
          event: { ts: Number(row.ts_ms), channel: (row.channel || 'web') as Channel, userKey: row.user_key || undefined, ...(Number(row.no_consent) === 1 ? { consent: false } : {}) },
          client: { ua: row.ua || undefined, ipPrefix: row.ip_prefix || undefined, ...(Number(row.ua_hashed) === 1 ? { uaHash: 'hashed' } : {}) },
          edge: { prefetch: Number(row.prefetch) === 1 ? true : undefined },
        },
        { impressionTs: row.event_type === 'click' && row.imp_ts !== null ? Number(row.imp_ts) : undefined, ipPrefixPerMinute: ipCount, userKeyPerMinute: ukCount },
      )
      scored++
      if (score > 0) {
        const quarantined = quarantines(score, model.quarantineAbove)
        if (quarantined) flagged++
        pending.push({
          event_key: row.event_key, event_type: row.event_type, campaign_id: row.campaign_id, publisher_id: row.publisher_id,
          ts: chTime(Number(row.ts_ms)), score, reasons, model_version: model.version, quarantined: quarantined ? 1 : 0, decided_at: decidedAt,
        })
      }
    }
    await flush()
  }
  await client.command({ query: `DROP TABLE IF EXISTS ${work}` })
  return { scored, flagged, marks }
}
