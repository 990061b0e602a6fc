import type { EventRow } from '../sinks/sink.js'

/**
 * The raw-event lake table's columns: Iceberg type, the ClickHouse type chDB writes into Parquet,
 * and the value taken from a processed event. Field ids are assigned by the table (1.. in this order
 * when the table is created; a column added later gets the next free id), never reused.
 */
export interface LakeColumn {
  name: string
  /** Iceberg primitive type, or `list<string>`. */
  type: 'string' | 'int' | 'long' | 'float' | 'timestamptz' | 'list<string>'
  required: boolean
  doc?: string
  /** The value from a processed event (times: epoch ms). */
  value(row: EventRow): unknown
}

const str = (name: keyof EventRow, doc?: string): LakeColumn => ({ name, type: 'string', required: true, doc, value: (r) => r[name] })
const int = (name: keyof EventRow, doc?: string): LakeColumn => ({ name, type: 'int', required: true, doc, value: (r) => r[name] })
const time = (name: 'ts' | 'received_at' | 'processed_at', doc: string): LakeColumn => ({ name, type: 'timestamptz', required: true, doc, value: (r) => r[name] })

/** Every column of `events_raw`, in its order, with the same values (times in microseconds). */
export const LAKE_COLUMNS: readonly LakeColumn[] = [
  str('event_key', 'edge dedup key'), str('event_type', 'impression or click'), str('event_id'), str('impression_id'), str('click_id'),
  str('campaign_id'), str('ad_id'), str('publisher_id'), str('request_id'),
  time('ts', 'event time (UTC); the table is partitioned by hour(ts)'), time('received_at', 'edge receive time (UTC)'),
  str('channel'), str('device'), str('geo'), str('placement'), str('user_key'), str('ua'), str('ip_prefix'), str('ip_hash'),
  str('edge_source'), str('edge_dedupe'), int('prefetch'), int('billable', '1 when billed'), str('reason', 'reason code when not billable'),
  { name: 'ivt_score', type: 'float', required: true, value: (r) => r.ivt_score },
  { name: 'ivt_reasons', type: 'list<string>', required: true, value: (r) => r.ivt_reasons },
  str('model_version'), int('joined'),
  int('log_partition', 'log partition of the record'), { name: 'log_offset', type: 'long', required: true, doc: 'log offset of the record', value: (r) => r.log_offset },
  time('processed_at', 'processor time (UTC)'),
  int('sign', '+1 verdict, -1 retraction of an earlier verdict'), int('viewable'), str('view_method'),
  int('no_consent', '1 when the event said consent: false'), int('ua_hashed', '1 when a sender-side uaHash stood in for the agent'),
]

/** The ClickHouse type chDB writes for a column (Parquet: UTF-8 strings, INT64 µs UTC timestamps). */
export function clickhouseType(type: LakeColumn['type']): string {
  switch (type) {
    case 'string': return 'String'
    case 'int': return 'Int32'
    case 'long': return 'Int64'
    case 'float': return 'Float32'
    case 'timestamptz': return "DateTime64(6, 'UTC')"
    case 'list<string>': return 'Array(String)'
  }
}

export type IcebergType = string | { type: 'list'; 'element-id': number; element: string; 'element-required': boolean }

export interface IcebergField {
  id: number
  name: string
  required: boolean
  type: IcebergType
  doc?: string
}

export interface IcebergSchema {
  type: 'struct'
  'schema-id': number
  fields: IcebergField[]
  'identifier-field-ids'?: number[]
}

/**
 * Iceberg fields for `columns` not yet in `existing`, with fresh ids after `lastColumnId`. On a new
 * table every column is required as the processor always writes it; a column added to an existing
 * table is optional, so files written before it stay readable (they read as null).
 */
export function addFields(columns: readonly LakeColumn[], existing: IcebergField[], lastColumnId: number): { fields: IcebergField[]; lastColumnId: number } {
  const have = new Set(existing.map((f) => f.name))
  const fresh = existing.length === 0
  const fields = [...existing]
  let id = lastColumnId
  for (const c of columns) {
    if (have.has(c.name)) continue
    const fieldId = ++id
    const type: IcebergType = c.type === 'list<string>' ? { type: 'list', 'element-id': ++id, element: 'string', 'element-required': true } : c.type
    fields.push({ id: fieldId, name: c.name, required: fresh && c.required, type, ...(c.doc ? { doc: c.doc } : {}) })
  }
  return { fields, lastColumnId: id }
}

export interface NameMapping { 'field-id': number; names: string[]; fields?: NameMapping[] }

/**
 * `schema.name-mapping.default`: Parquet files written by chDB carry column names, not field ids, so
 * readers (pyiceberg, Spark, Trino, DuckDB, ClickHouse) map them by name. List elements are named
 * `element` (Iceberg/Arrow) or `item` (ClickHouse's Parquet writer).
 */
export function nameMapping(fields: IcebergField[]): NameMapping[] {
  return fields.map((f) => ({
    'field-id': f.id,
    names: [f.name],
    ...(typeof f.type === 'object' ? { fields: [{ 'field-id': f.type['element-id'], names: ['element', 'item'] }] } : {}),
  }))
}

/** Hours since the epoch of a time in epoch ms: Iceberg's `hour` transform. */
export const hourOf = (ms: number): number => Math.floor(ms / 3_600_000)
