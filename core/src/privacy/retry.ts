import type { ClickHouseClient } from '@clickhouse/client'
import type { Logger } from 'pino'
import { ulid } from 'ulid'
import type { Lease } from '../billing/lease.js'
import { CLICKHOUSE_STORE, clickhouseEraser, insertPrivacyRow, type PrivacyAudit, type RawEraser, type StoredSubject } from './erase.js'

/**
 * The backlog of privacy erasures a store left `pending` (privacy/erase.ts): a request whose latest
 * row (its own, or its latest follow-up) still names a pending store, whether the store failed or
 * the process died before it answered. The lake upkeep (lake/upkeep.ts, one replica under its
 * lease) works through it on every run, or without a lake this module's own schedule (`start`).
 * The audit rows keep the SHA-256 of the identifier only, so a retry erases by that hash
 * (`RawEraser.eraseStored`; ClickHouse's own tables through `clickhouseEraser`).
 *
 * `privacy_requests` stays append-only: when a retry finished any store, a follow-up row is appended
 * (`follow_up_of` = the request id, `external` every store's status now, `requested_by`
 * `RETRY_ACTOR`); no row is ever changed. A run that finished nothing leaves no row, and the request
 * is tried again on the next run.
 */
export const RETRY_ACTOR = 'privacy-retry'

/** How often a deployment without the lake's upkeep retries pending erasures (`start`). */
export const PRIVACY_RETRY_INTERVAL_MS = 5 * 60_000

export interface ErasureRetryResult {
  /** Pending requests tried this run. */
  retried: number
  /** Of those, the ones every store finished (a follow-up row was appended). */
  done: number
  /** Of those, the ones some store left pending. */
  pending: number
}

/** A privacy request as it stands: its audit row with the follow-ups' store statuses laid over it. */
export interface PrivacyRequestStatus extends Omit<PrivacyAudit, 'requestedBy'> {
  /** When the last store finished (epoch ms): the request's own time if none was pending, null while one is. */
  completedAt: number | null
}

interface Row {
  request_id: string
  at: string | number
  publisher_id: string
  subject: 'userKey' | 'ipHash'
  subject_sha256: string
  deleted: Record<string, string | number>
  external: Record<string, string>
  follow_up_of: string
}

const COLUMNS = `request_id, toUnixTimestamp64Milli(requested_at) AS at, publisher_id, subject, subject_sha256, deleted, external, follow_up_of`
const isPending = (external: Record<string, string>) => Object.values(external).includes('pending')

/** The request `requestId` with its follow-ups, or undefined when there is no such request. */
export async function readPrivacyRequest(deps: { client: ClickHouseClient; database: string }, requestId: string): Promise<PrivacyRequestStatus | undefined> {
  const rs = await deps.client.query({
    query: `SELECT ${COLUMNS} FROM ${deps.database}.privacy_requests
      WHERE request_id = {id:String} OR follow_up_of = {id:String} ORDER BY requested_at, request_id`,
    query_params: { id: requestId },
    format: 'JSONEachRow',
  })
  const rows = await rs.json<Row>()
  const own = rows.find((r) => r.request_id === requestId && r.follow_up_of === '')
  if (!own) return undefined
  const external: Record<string, 'done' | 'pending'> = { ...(own.external as Record<string, 'done' | 'pending'>) }
  let completedAt: number | null = isPending(own.external) ? null : Number(own.at)
  for (const f of rows.filter((r) => r.follow_up_of === requestId)) {
    Object.assign(external, f.external)
    if (completedAt === null && !isPending(external)) completedAt = Number(f.at)
  }
  const d = own.deleted
  return {
    requestId, requestedAt: Number(own.at), publisherId: own.publisher_id, subject: own.subject, subjectSha256: own.subject_sha256,
    deleted: { events_raw: Number(d.events_raw ?? 0), ivt_decisions: Number(d.ivt_decisions ?? 0), bad_rows: Number(d.bad_rows ?? 0) },
    external, completedAt,
  }
}

export interface PrivacyRetryOptions {
  client: ClickHouseClient
  database: string
  /** The raw stores by name, as the privacy route erases them (main passes the Iceberg table's). */
  erasers: RawEraser[]
  logger: Logger
  /** @default Date.now */
  clock?: () => number
  /** Requests tried per run, oldest first. @default 100 */
  batchSize?: number
}

export function createPrivacyRetry(options: PrivacyRetryOptions) {
  const { client, database: db } = options
  // ClickHouse's own tables are a store every request names (erase.ts), whatever lake is configured.
  const stores = options.erasers.some((e) => e.name === CLICKHOUSE_STORE) ? options.erasers : [clickhouseEraser(client, db, options.logger), ...options.erasers]
  const clock = options.clock ?? Date.now
  const log = options.logger.child({ component: 'privacy-retry' })

  const limit = options.batchSize ?? 100
  /**
   * Where the next run goes on: after the last request this process tried (request ids are ULIDs of
   * their time, so this is oldest first), back to the oldest once the backlog is walked. Requests
   * that stay pending for good (a tag holds their files) then never keep the ones after them waiting.
   */
  let after = ''

  /** Up to `limit` requests with a store pending and no follow-up yet, oldest first from the cursor. */
  async function backlog(): Promise<Row[]> {
    let rows = await page(after)
    // The last walk ended exactly at a full page: start over now rather than spend a run on nothing.
    if (rows.length === 0 && after !== '') rows = await page('')
    after = rows.length < limit ? '' : rows.at(-1)!.request_id
    return rows
  }

  async function page(from: string): Promise<Row[]> {
    // Each request's status is its latest row's (own row first, then its follow-ups in time order;
    // a follow-up written in the request's own millisecond still comes after it).
    const rs = await client.query({
      query: `SELECT o.request_id AS request_id, toUnixTimestamp64Milli(o.requested_at) AS at, o.publisher_id AS publisher_id, o.subject AS subject,
          o.subject_sha256 AS subject_sha256, o.deleted AS deleted, c.current AS external, o.follow_up_of AS follow_up_of
        FROM ${db}.privacy_requests AS o
        INNER JOIN (
          SELECT if(follow_up_of = '', request_id, follow_up_of) AS rid, argMax(external, (requested_at, follow_up_of != '', request_id)) AS current
          FROM ${db}.privacy_requests GROUP BY rid
        ) AS c ON c.rid = o.request_id
        WHERE o.follow_up_of = '' AND has(mapValues(c.current), 'pending') AND o.request_id > {after:String}
        ORDER BY o.request_id LIMIT {limit:UInt32}`,
      query_params: { limit, after: from },
      format: 'JSONEachRow',
    })
    return rs.json<Row>()
  }

  /** One pass over the backlog: each pending store of each request erased again by the stored hash. */
  async function retry(): Promise<ErasureRetryResult> {
    const result: ErasureRetryResult = { retried: 0, done: 0, pending: 0 }
    for (const row of await backlog()) {
      result.retried++
      const subject: StoredSubject = { publisherId: row.publisher_id, subject: row.subject, subjectSha256: row.subject_sha256 }
      const now: Record<string, 'done' | 'pending'> = { ...(row.external as Record<string, 'done' | 'pending'>) }
      let finished = 0
      for (const [name, status] of Object.entries(row.external)) {
        if (status !== 'pending') continue
        const eraser = stores.find((e) => e.name === name)
        now[name] = eraser?.eraseStored ? await eraser.eraseStored(subject) : 'pending'
        if (now[name] === 'done') finished++
      }
      const pending = isPending(now)
      if (pending) {
        result.pending++
        log.warn({ requestId: row.request_id, publisherId: row.publisher_id, external: now, reason: now[CLICKHOUSE_STORE] === 'pending' ? 'privacy_erasure_failed' : 'lake_erasure_failed' }, 'privacy erasure still pending; tried again on the next run')
      } else result.done++
      if (finished === 0) continue
      const at = clock()
      await insertPrivacyRow(client, db, {
        requestId: ulid(at), at, by: RETRY_ACTOR, publisherId: row.publisher_id, subject: row.subject, subjectSha256: row.subject_sha256,
        deleted: {}, external: now, followUpOf: row.request_id,
      })
      if (!pending) log.info({ requestId: row.request_id, publisherId: row.publisher_id, external: now }, 'pending privacy erasure done')
    }
    return result
  }

  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined
  /**
   * Runs `retry` every `intervalMs` while `lease` (if given) is held here: for a deployment without a
   * lake, whose upkeep would otherwise run it.
   */
  function start({ intervalMs, lease }: { intervalMs: number; lease?: Pick<Lease, 'held'> }): void {
    if (timer) return
    timer = setInterval(() => {
      if (running || (lease && !lease.held())) return
      running = retry().catch((err: unknown) => log.error({ err, reason: 'privacy_erasure_failed' }, 'privacy retry run failed; the next run tries again')).finally(() => { running = undefined })
    }, intervalMs)
    timer.unref()
  }

  async function stop(): Promise<void> {
    if (timer) clearInterval(timer)
    timer = undefined
    await running
  }

  return { retry, start, stop }
}

export type PrivacyRetry = ReturnType<typeof createPrivacyRetry>
