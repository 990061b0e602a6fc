import { chTime } from '@adc/schemas'
import { createHash } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Logger } from 'pino'
import { ulid } from 'ulid'

/**
 * Erasure of one person's raw data (a privacy request): the person is named within one publisher
 * by the `userKey` the publisher sent, or by the `ipHash` the edge stored. Raw rows go:
 * `events_raw`, the `ivt_decisions` of those events, and `bad_rows` whose payload names them.
 * Aggregates stay (rollups hold counts and HyperLogLog sketches, not identifiers), and so do billing
 * snapshots: what was invoiced is not changed. A day with erased rows re-closes to fewer events than
 * its snapshot, which the reconcile report then shows as a difference.
 *
 * Every request leaves an audit row in `privacy_requests` (kept forever, no TTL) with the SHA-256 of
 * the identifier (never the identifier) and the rows found per table, written BEFORE anything is
 * erased, with every store `pending`: ClickHouse's own tables (`CLICKHOUSE_STORE`) and each raw
 * store erased elsewhere (`RawEraser`: the Iceberg table's is privacy/iceberg-eraser.ts, which
 * rewrites the lake's data files without the rows and deletes the old ones). Once the stores have
 * answered, a follow-up row records each one's status, `done` or `pending`. So a request the process
 * dies in the middle of, or a store that fails, is never lost: its latest row still says `pending`,
 * and the retry (privacy/retry.ts) finishes it by the identifier's SHA-256.
 */
export type PrivacySubject = { publisherId: string; userKey: string; ipHash?: undefined } | { publisherId: string; ipHash: string; userKey?: undefined }

/**
 * A person as the audit row names them: the SHA-256 (hex) of the identifier, never the identifier.
 * What a retry of a pending erasure has to go on (privacy/retry.ts).
 */
export interface StoredSubject {
  publisherId: string
  subject: 'userKey' | 'ipHash'
  subjectSha256: string
}

/** A raw store erased outside ClickHouse (Iceberg). */
export interface RawEraser {
  name: string
  erase(subject: PrivacySubject): Promise<'done' | 'pending'>
  /** Erases by the identifier's SHA-256, for a retry of a pending erasure; without it the store's pending stays pending. */
  eraseStored?(subject: StoredSubject): Promise<'done' | 'pending'>
}

/** Records the Iceberg erasure as pending: the default where no lake eraser is given (privacy/iceberg-eraser.ts is the real one). */
export const ICEBERG_PENDING: RawEraser = { name: 'iceberg', erase: async () => 'pending' }

/** The store name of ClickHouse's own raw tables in an audit row's `external`. */
export const CLICKHOUSE_STORE = 'clickhouse'

export interface PrivacyAudit {
  requestId: string
  requestedAt: number
  requestedBy: string
  publisherId: string
  subject: 'userKey' | 'ipHash'
  subjectSha256: string
  /** Rows found per table when the request came (what the ClickHouse erasure removes). */
  deleted: Record<'events_raw' | 'ivt_decisions' | 'bad_rows', number>
  /** Every store's status: ClickHouse's tables (`clickhouse`) and the raw stores erased elsewhere, by name. */
  external: Record<string, 'done' | 'pending'>
}

/** Whom a statement names: the identifier itself, or (a retry) its SHA-256. */
type Match = { publisherId: string; subject: 'userKey' | 'ipHash' } & ({ value: string } | { sha256: string })

/** The WHERE clauses of a person's rows in events_raw and in bad_rows, with their parameters. */
function predicates(m: Match): { raw: string; bad: string; params: Record<string, string> } {
  const column = m.subject === 'userKey' ? 'user_key' : 'ip_hash'
  const badField = m.subject === 'userKey' ? `JSONExtractString(payload, 'event', 'userKey')` : `JSONExtractString(payload, 'client', 'ipHash')`
  const badPublisher = `JSONExtractString(payload, 'event', 'publisherId') = {publisher:String}`
  if ('value' in m) {
    return { raw: `publisher_id = {publisher:String} AND ${column} = {value:String}`, bad: `${badPublisher} AND ${badField} = {value:String}`, params: { publisher: m.publisherId, value: m.value } }
  }
  // The audit row's hash is of the identifier's UTF-8 bytes, as SHA256() hashes a String's bytes.
  const hashed = (x: string) => `lower(hex(SHA256(${x}))) = {sha:String}`
  return { raw: `publisher_id = {publisher:String} AND ${hashed(column)}`, bad: `${badPublisher} AND ${hashed(badField)}`, params: { publisher: m.publisherId, sha: m.sha256.toLowerCase() } }
}

async function countRows(client: ClickHouseClient, db: string, m: Match): Promise<PrivacyAudit['deleted']> {
  const { raw, bad, params } = predicates(m)
  const count = async (query: string): Promise<number> =>
    Number((await (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<{ n: string }>())[0]?.n ?? 0)
  return {
    ivt_decisions: await count(`SELECT count() AS n FROM ${db}.ivt_decisions WHERE publisher_id = {publisher:String} AND event_key IN (SELECT event_key FROM ${db}.events_raw WHERE ${raw})`),
    events_raw: await count(`SELECT count() AS n FROM ${db}.events_raw WHERE ${raw}`),
    bad_rows: await count(`SELECT count() AS n FROM ${db}.bad_rows WHERE ${bad}`),
  }
}

/** Lightweight deletes (rows vanish from reads at once, from disk with the next merges); a table known to hold none is skipped. */
async function deleteRows(client: ClickHouseClient, db: string, m: Match, found?: PrivacyAudit['deleted']): Promise<void> {
  const { raw, bad, params } = predicates(m)
  // IVT decisions first: they are found through the raw rows' event keys.
  if (found === undefined || found.ivt_decisions > 0) {
    await client.command({ query: `DELETE FROM ${db}.ivt_decisions WHERE publisher_id = {publisher:String} AND event_key IN (SELECT event_key FROM ${db}.events_raw WHERE ${raw})`, query_params: params })
  }
  if (found === undefined || found.events_raw > 0) await client.command({ query: `DELETE FROM ${db}.events_raw WHERE ${raw}`, query_params: params })
  if (found === undefined || found.bad_rows > 0) await client.command({ query: `DELETE FROM ${db}.bad_rows WHERE ${bad}`, query_params: params })
}

async function attempt(what: () => Promise<void>, logger: Logger | undefined, context: Record<string, unknown>): Promise<'done' | 'pending'> {
  try {
    await what()
    return 'done'
  } catch (err) {
    logger?.error({ err, reason: 'privacy_erasure_failed', ...context }, 'privacy erasure in ClickHouse failed; recorded as pending')
    return 'pending'
  }
}

/**
 * ClickHouse's own raw tables as a store a retry can finish (`eraseStored`, by the identifier's
 * SHA-256: a scan of the publisher's rows, which only a request the first try left pending costs).
 */
export function clickhouseEraser(client: ClickHouseClient, database: string, logger?: Logger): RawEraser {
  return {
    name: CLICKHOUSE_STORE,
    erase: (s) => attempt(() => deleteRows(client, database, matchOf(s)), logger, { publisherId: s.publisherId }),
    eraseStored: (s) => attempt(() => deleteRows(client, database, { publisherId: s.publisherId, subject: s.subject, sha256: s.subjectSha256 }), logger, { publisherId: s.publisherId }),
  }
}

const matchOf = (s: PrivacySubject): Match =>
  s.userKey !== undefined ? { publisherId: s.publisherId, subject: 'userKey', value: s.userKey } : { publisherId: s.publisherId, subject: 'ipHash', value: s.ipHash! }

/** One row of `privacy_requests`: a request's own (no `followUpOf`) or a follow-up recording its stores' statuses. */
export async function insertPrivacyRow(
  client: ClickHouseClient,
  database: string,
  row: { requestId: string; at: number; by: string; publisherId: string; subject: 'userKey' | 'ipHash'; subjectSha256: string; deleted: Partial<PrivacyAudit['deleted']>; external: Record<string, string>; followUpOf?: string },
): Promise<void> {
  await client.insert({
    table: `${database}.privacy_requests`,
    values: [{
      request_id: row.requestId, requested_at: chTime(row.at), requested_by: row.by, publisher_id: row.publisherId, subject: row.subject,
      subject_sha256: row.subjectSha256, deleted: row.deleted, external: row.external, ...(row.followUpOf ? { follow_up_of: row.followUpOf } : {}),
    }],
    format: 'JSONEachRow',
  })
}

export async function eraseSubject(
  deps: { client: ClickHouseClient; database: string; erasers?: RawEraser[]; logger?: Logger },
  subject: PrivacySubject,
  meta: { requestedBy: string; now: number; clock?: () => number },
): Promise<PrivacyAudit> {
  const { client, database: db } = deps
  const erasers = deps.erasers ?? [ICEBERG_PENDING]
  const match = matchOf(subject)
  const deleted = await countRows(client, db, match)
  const audit: PrivacyAudit = {
    requestId: ulid(meta.now),
    requestedAt: meta.now,
    requestedBy: meta.requestedBy,
    publisherId: subject.publisherId,
    subject: match.subject,
    subjectSha256: createHash('sha256').update(subject.userKey ?? subject.ipHash!, 'utf8').digest('hex'),
    deleted,
    external: Object.fromEntries([CLICKHOUSE_STORE, ...erasers.map((e) => e.name)].map((name) => [name, 'pending' as const])),
  }
  const row = { at: audit.requestedAt, by: audit.requestedBy, publisherId: audit.publisherId, subject: audit.subject, subjectSha256: audit.subjectSha256 }
  // Written ahead: from here on the request is on record, whatever happens to this process.
  await insertPrivacyRow(client, db, { ...row, requestId: audit.requestId, deleted, external: audit.external })

  const external: Record<string, 'done' | 'pending'> = {
    [CLICKHOUSE_STORE]: await attempt(() => deleteRows(client, db, match, deleted), deps.logger, { requestId: audit.requestId, publisherId: audit.publisherId }),
  }
  for (const e of erasers) external[e.name] = await e.erase(subject)
  // After the request's own row, even on a clock that stands still (its status is the latest row's).
  const at = Math.max((meta.clock ?? Date.now)(), audit.requestedAt + 1)
  await insertPrivacyRow(client, db, { ...row, requestId: ulid(at), at, deleted: {}, external, followUpOf: audit.requestId })
  return { ...audit, external }
}
