import { writeAvroFile } from './avro.js'
import type { Id, PartitionSpec } from './metadata.js'
import type { IcebergSchema } from './schema.js'

/** One Parquet data file of an append, in one hour partition. */
export interface DataFile {
  path: string
  recordCount: number
  sizeBytes: number
  /** Partition tuple by partition field name (`ts_hour`: hours since the epoch). */
  partition: Record<string, number>
  /** Column metrics by field id: value and null counts, lower and upper bounds (single-value serialised). */
  metrics?: { valueCounts: Map<number, number>; nullCounts: Map<number, number>; lower: Map<number, Buffer>; upper: Map<number, Buffer> }
}

/** Iceberg's Avro form of a map with int keys: an array of key/value records. */
const intMap = (field: string, id: number, keyId: number, valueId: number, value: string) => ({
  name: field,
  'field-id': id,
  default: null,
  type: opt({ type: 'array', logicalType: 'map', items: { type: 'record', name: `k${keyId}_v${valueId}`, fields: [{ name: 'key', type: 'int', 'field-id': keyId }, { name: 'value', type: value, 'field-id': valueId }] } }),
})
const toEntries = <V>(m: Map<number, V> | undefined) => (m ? [...m].map(([key, value]) => ({ key, value })) : null)

const opt = (type: unknown) => ['null', type]

/** Iceberg v2 `manifest_entry` Avro schema (field ids from the spec) for a spec of int-valued fields. */
function manifestEntrySchema(spec: PartitionSpec): object {
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      { name: 'snapshot_id', type: opt('long'), default: null, 'field-id': 1 },
      { name: 'sequence_number', type: opt('long'), default: null, 'field-id': 3 },
      { name: 'file_sequence_number', type: opt('long'), default: null, 'field-id': 4 },
      {
        name: 'data_file',
        'field-id': 2,
        type: {
          type: 'record',
          name: 'r2',
          fields: [
            { name: 'content', type: 'int', 'field-id': 134, doc: 'Contents of the file: 0=data, 1=position deletes, 2=equality deletes' },
            { name: 'file_path', type: 'string', 'field-id': 100 },
            { name: 'file_format', type: 'string', 'field-id': 101 },
            {
              name: 'partition',
              'field-id': 102,
              type: { type: 'record', name: 'r102', fields: spec.fields.map((f) => ({ name: f.name, type: opt('int'), default: null, 'field-id': f['field-id'] })) },
            },
            { name: 'record_count', type: 'long', 'field-id': 103 },
            { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
            intMap('value_counts', 109, 119, 120, 'long'),
            intMap('null_value_counts', 110, 121, 122, 'long'),
            intMap('lower_bounds', 125, 126, 127, 'bytes'),
            intMap('upper_bounds', 128, 129, 130, 'bytes'),
          ],
        },
      },
    ],
  }
}

const FIELD_SUMMARY = {
  type: 'record',
  name: 'r508',
  fields: [
    { name: 'contains_null', type: 'boolean', 'field-id': 509 },
    { name: 'contains_nan', type: opt('boolean'), default: null, 'field-id': 518 },
    { name: 'lower_bound', type: opt('bytes'), default: null, 'field-id': 510 },
    { name: 'upper_bound', type: opt('bytes'), default: null, 'field-id': 511 },
  ],
}

/** Iceberg v2 `manifest_file` Avro schema (the manifest list's records). */
export const MANIFEST_FILE_SCHEMA = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500 },
    { name: 'manifest_length', type: 'long', 'field-id': 501 },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502 },
    { name: 'content', type: 'int', 'field-id': 517 },
    { name: 'sequence_number', type: 'long', 'field-id': 515 },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516 },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503 },
    { name: 'added_files_count', type: 'int', 'field-id': 504 },
    { name: 'existing_files_count', type: 'int', 'field-id': 505 },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506 },
    { name: 'added_rows_count', type: 'long', 'field-id': 512 },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513 },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514 },
    { name: 'partitions', type: opt({ type: 'array', items: FIELD_SUMMARY, 'element-id': 508 }), default: null, 'field-id': 507 },
    { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 519 },
  ],
}

export interface ManifestFile {
  manifest_path: string
  manifest_length: number
  partition_spec_id: number
  content: number
  sequence_number: number | bigint
  min_sequence_number: number | bigint
  added_snapshot_id: Id
  added_files_count: number
  existing_files_count: number
  deleted_files_count: number
  added_rows_count: number | bigint
  existing_rows_count: number | bigint
  deleted_rows_count: number | bigint
  partitions: { contains_null: boolean; contains_nan: boolean | null; lower_bound: Buffer | null; upper_bound: Buffer | null }[] | null
  key_metadata: Buffer | null
}

/** Iceberg's single-value serialisation of an int: 4 bytes little-endian. */
const intBound = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeInt32LE(n)
  return b
}

/** A `manifest_entry` record as written (status 0 existing, 1 added, 2 deleted). */
export interface ManifestEntry {
  status: number
  snapshot_id: Id | null
  sequence_number: number | bigint | null
  file_sequence_number: number | bigint | null
  data_file: {
    content: number; file_path: string; file_format: string; partition: Record<string, number | null>; record_count: number | bigint; file_size_in_bytes: number | bigint
    value_counts?: { key: number; value: number | bigint }[] | null; null_value_counts?: { key: number; value: number | bigint }[] | null
    lower_bounds?: { key: number; value: Buffer }[] | null; upper_bounds?: { key: number; value: Buffer }[] | null
  }
}

function encodeManifest(records: ManifestEntry[], schema: IcebergSchema, spec: PartitionSpec): Buffer {
  return writeAvroFile(manifestEntrySchema(spec), records, {
    schema: JSON.stringify(schema),
    'schema-id': String(schema['schema-id']),
    'partition-spec': JSON.stringify(spec.fields),
    'partition-spec-id': String(spec['spec-id']),
    'format-version': '2',
    content: 'data',
  })
}

/** The manifest list's per-partition-field summary of some partition tuples. */
function partitionSummaries(spec: PartitionSpec, tuples: Record<string, number | null | undefined>[]): ManifestFile['partitions'] {
  return spec.fields.map((p) => {
    const values = tuples.map((t) => t[p.name]).filter((v): v is number => typeof v === 'number')
    return values.length === 0
      ? { contains_null: true, contains_nan: null, lower_bound: null, upper_bound: null }
      : { contains_null: values.length < tuples.length, contains_nan: false, lower_bound: intBound(Math.min(...values)), upper_bound: intBound(Math.max(...values)) }
  })
}

/** Suffix of the manifests this writer creates (the only ones it merges: it knows their whole content). */
export const OWN_MANIFEST = /-adc-(m0|merged|rewritten)\.avro$/

/** A manifest of added data files for one snapshot, and its manifest-list record (sequence numbers set at commit). */
export function buildManifest(opts: { location: string; files: DataFile[]; snapshotId: Id; schema: IcebergSchema; spec: PartitionSpec }): { bytes: Buffer; entry: Omit<ManifestFile, 'sequence_number' | 'min_sequence_number'> } {
  const { files, spec } = opts
  const records: ManifestEntry[] = files.map((f) => ({
    status: 1, // ADDED; sequence numbers are inherited from the manifest list
    snapshot_id: opts.snapshotId,
    sequence_number: null,
    file_sequence_number: null,
    data_file: { content: 0, file_path: f.path, file_format: 'PARQUET', partition: Object.fromEntries(spec.fields.map((p) => [p.name, f.partition[p.name] ?? null])), record_count: f.recordCount, file_size_in_bytes: f.sizeBytes,
      value_counts: toEntries(f.metrics?.valueCounts), null_value_counts: toEntries(f.metrics?.nullCounts), lower_bounds: toEntries(f.metrics?.lower), upper_bounds: toEntries(f.metrics?.upper) },
  }))
  const bytes = encodeManifest(records, opts.schema, spec)
  const partitions = partitionSummaries(spec, files.map((f) => f.partition))
  return {
    bytes,
    entry: {
      manifest_path: opts.location,
      manifest_length: bytes.length,
      partition_spec_id: spec['spec-id'],
      content: 0,
      added_snapshot_id: opts.snapshotId,
      added_files_count: files.length,
      existing_files_count: 0,
      deleted_files_count: 0,
      added_rows_count: files.reduce((n, f) => n + f.recordCount, 0),
      existing_rows_count: 0,
      deleted_rows_count: 0,
      partitions,
      key_metadata: null,
    },
  }
}

/** A manifest list: the previous snapshot's manifests (carried over as read) plus the new one. */
export function buildManifestList(manifests: ManifestFile[], meta: { snapshotId: Id; parentId: Id | null; sequenceNumber: number }): Buffer {
  return writeAvroFile(MANIFEST_FILE_SCHEMA, manifests, {
    'snapshot-id': String(meta.snapshotId),
    'parent-snapshot-id': meta.parentId === null ? 'null' : String(meta.parentId),
    'sequence-number': String(meta.sequenceNumber),
    'format-version': '2',
  })
}

/** Manifest-list records read from any writer, normalised to the v2 field names written here. */
export function normaliseManifestFile(r: Record<string, unknown>): ManifestFile {
  const pick = <T>(...names: string[]): T => names.map((n) => r[n]).find((v) => v !== undefined) as T
  return {
    manifest_path: pick('manifest_path'),
    manifest_length: Number(pick('manifest_length')),
    partition_spec_id: pick('partition_spec_id'),
    content: pick<number | undefined>('content') ?? 0,
    sequence_number: pick<bigint | number | undefined>('sequence_number') ?? 0,
    min_sequence_number: pick<bigint | number | undefined>('min_sequence_number') ?? 0,
    added_snapshot_id: pick('added_snapshot_id'),
    added_files_count: pick<number | undefined>('added_files_count', 'added_data_files_count') ?? 0,
    existing_files_count: pick<number | undefined>('existing_files_count', 'existing_data_files_count') ?? 0,
    deleted_files_count: pick<number | undefined>('deleted_files_count', 'deleted_data_files_count') ?? 0,
    added_rows_count: pick<bigint | number | undefined>('added_rows_count') ?? 0,
    existing_rows_count: pick<bigint | number | undefined>('existing_rows_count') ?? 0,
    deleted_rows_count: pick<bigint | number | undefined>('deleted_rows_count') ?? 0,
    partitions: pick<ManifestFile['partitions'] | undefined>('partitions') ?? null,
    key_metadata: pick<Buffer | null | undefined>('key_metadata') ?? null,
  }
}

/**
 * Merges manifests (read back as `sources`, each with its manifest-list record) into one: their live
 * entries become EXISTING with explicit snapshot ids and sequence numbers, so readers see the same
 * files with the same sequence numbers through one manifest instead of many.
 */
export function mergeManifests(opts: { location: string; sources: { file: ManifestFile; entries: Record<string, unknown>[] }[]; snapshotId: Id; sequenceNumber: number; schema: IcebergSchema; spec: PartitionSpec }): { bytes: Buffer; entry: ManifestFile } {
  const records: ManifestEntry[] = []
  for (const { file, entries } of opts.sources) {
    for (const e of entries as unknown as ManifestEntry[]) {
      if (e.status === 2) continue // DELETED entries end with the manifest that recorded them
      records.push({
        status: 0,
        snapshot_id: e.snapshot_id ?? file.added_snapshot_id,
        sequence_number: e.sequence_number ?? file.sequence_number,
        file_sequence_number: e.file_sequence_number ?? e.sequence_number ?? file.sequence_number,
        data_file: e.data_file,
      })
    }
  }
  return entriesManifest({ ...opts, records })
}

/**
 * A manifest of entries with explicit snapshot ids and sequence numbers (EXISTING and DELETED ones;
 * ADDED ones inherit theirs from the manifest-list record), and that record for a snapshot with
 * `sequenceNumber`.
 */
export function entriesManifest(opts: { location: string; records: ManifestEntry[]; snapshotId: Id; sequenceNumber: number; schema: IcebergSchema; spec: PartitionSpec }): { bytes: Buffer; entry: ManifestFile } {
  const { records } = opts
  const bytes = encodeManifest(records, opts.schema, opts.spec)
  const seqs = records.map((r) => BigInt(r.sequence_number ?? opts.sequenceNumber))
  const minSeq = seqs.reduce((a, b) => (b < a ? b : a), BigInt(opts.sequenceNumber))
  const count = (status: number) => records.filter((r) => r.status === status).length
  const rows = (status: number) => records.filter((r) => r.status === status).reduce((n, r) => n + Number(r.data_file.record_count), 0)
  return {
    bytes,
    entry: {
      manifest_path: opts.location,
      manifest_length: bytes.length,
      partition_spec_id: opts.spec['spec-id'],
      content: 0,
      sequence_number: opts.sequenceNumber,
      min_sequence_number: Number.isSafeInteger(Number(minSeq)) ? Number(minSeq) : minSeq,
      added_snapshot_id: opts.snapshotId,
      added_files_count: count(1),
      existing_files_count: count(0),
      deleted_files_count: count(2),
      added_rows_count: rows(1),
      existing_rows_count: rows(0),
      deleted_rows_count: rows(2),
      partitions: partitionSummaries(opts.spec, records.map((r) => r.data_file.partition)),
      key_metadata: null,
    },
  }
}
