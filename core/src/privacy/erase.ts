import { chTime } from '@adc/schemas'
import { createHash } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
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
 * the identifier (never the identifier), the rows deleted per table, and the status of each raw
 * store that is erased elsewhere (`RawEraser`: the Iceberg table's is privacy/iceberg-eraser.ts, which
 * rewrites the lake's data files without the rows and deletes the old ones; `pending` where a store
 * could not finish, and the audit rows with `pending` are its queue).
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

export interface PrivacyAudit {
  requestId: string
  requestedAt: number
  requestedBy: string
  publisherId: string
  subject: 'userKey' | 'ipHash'
  subjectSha256: string
  deleted: Record<'events_raw' | 'ivt_decisions' | 'bad_rows', number>
  /** Raw stores erased elsewhere, by name. */
  external: Record<string, 'done' | 'pending'>
}

export async function eraseSubject(
  deps: { client: ClickHouseClient; database: string; erasers?: RawEraser[] },
  subject: PrivacySubject,
  meta: { requestedBy: string; now: number },
): Promise<PrivacyAudit> {
  const { client, database: db } = deps
  const kind = subject.userKey !== undefined ? 'userKey' : 'ipHash'
  const value = subject.userKey ?? subject.ipHash!
  const params = { publisher: subject.publisherId, value }
  const rawWhere = `publisher_id = {publisher:String} AND ${kind === 'userKey' ? 'user_key' : 'ip_hash'} = {value:String}`
  const badWhere = `JSONExtractString(payload, 'event', 'publisherId') = {publisher:String} AND ` +
    (kind === 'userKey' ? `JSONExtractString(payload, 'event', 'userKey') = {value:String}` : `JSONExtractString(payload, 'client', 'ipHash') = {value:String}`)
  const count = async (query: string): Promise<number> =>
    Number((await (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<{ n: string }>())[0]?.n ?? 0)

  const keys = `SELECT event_key FROM ${db}.events_raw WHERE ${rawWhere}`
  const deleted = {
    // IVT decisions first: they are found through the raw rows' event keys.
    ivt_decisions: await count(`SELECT count() AS n FROM ${db}.ivt_decisions WHERE publisher_id = {publisher:String} AND event_key IN (${keys})`),
    events_raw: await count(`SELECT count() AS n FROM ${db}.events_raw WHERE ${rawWhere}`),
    bad_rows: await count(`SELECT count() AS n FROM ${db}.bad_rows WHERE ${badWhere}`),
  }
  // Lightweight deletes: rows vanish from reads at once and from disk with the next merges.
  if (deleted.ivt_decisions > 0) {
    await client.command({ query: `DELETE FROM ${db}.ivt_decisions WHERE publisher_id = {publisher:String} AND event_key IN (${keys})`, query_params: params })
  }
  if (deleted.events_raw > 0) await client.command({ query: `DELETE FROM ${db}.events_raw WHERE ${rawWhere}`, query_params: params })
  if (deleted.bad_rows > 0) await client.command({ query: `DELETE FROM ${db}.bad_rows WHERE ${badWhere}`, query_params: params })

  const external: Record<string, 'done' | 'pending'> = {}
  for (const e of deps.erasers ?? [ICEBERG_PENDING]) external[e.name] = await e.erase(subject)

  const audit: PrivacyAudit = {
    requestId: ulid(meta.now),
    requestedAt: meta.now,
    requestedBy: meta.requestedBy,
    publisherId: subject.publisherId,
    subject: kind,
    subjectSha256: createHash('sha256').update(value, 'utf8').digest('hex'),
    deleted,
    external,
  }
  await client.insert({
    table: `${db}.privacy_requests`,
    values: [{
      request_id: audit.requestId, requested_at: chTime(audit.requestedAt), requested_by: audit.requestedBy, publisher_id: audit.publisherId,
      subject: audit.subject, subject_sha256: audit.subjectSha256, deleted: audit.deleted, external: audit.external,
    }],
    format: 'JSONEachRow',
  })
  return audit
}
