import { describe, expect, it } from 'vitest'
import { readAvroFile, writeAvroFile } from './avro.js'
import { parseJson, stringifyJson } from './json.js'
import { MANIFEST_FILE_SCHEMA } from './manifest.js'

describe('Iceberg metadata encodings', () => {
  it('keeps field ids in the Avro writer schema and 63-bit snapshot ids exact', () => {
    const big = 8_915_238_471_092_384_712n // a snapshot id another engine wrote: beyond 2^53
    const rec = {
      manifest_path: 's3://w/m.avro', manifest_length: 10, partition_spec_id: 0, content: 0, sequence_number: 3, min_sequence_number: 3,
      added_snapshot_id: big, added_files_count: 1, existing_files_count: 0, deleted_files_count: 0, added_rows_count: 5,
      existing_rows_count: 0, deleted_rows_count: 0, partitions: null, key_metadata: null,
    }
    const file = readAvroFile(writeAvroFile(MANIFEST_FILE_SCHEMA, [rec], { 'format-version': '2' }))
    expect(file.metadata['format-version']).toBe('2')
    expect((file.schema as { fields: { name: string; 'field-id': number }[] }).fields.map((f) => [f.name, f['field-id']]).slice(0, 3)).toEqual([['manifest_path', 500], ['manifest_length', 501], ['partition_spec_id', 502]])
    expect(file.records[0]!.added_snapshot_id).toBe(big)
  })

  it('reads and writes metadata JSON with 63-bit ids unchanged', () => {
    const text = '{"current-snapshot-id": 8915238471092384712, "snapshots": [{"snapshot-id": 8915238471092384712, "sequence-number": 1}], "n": 1234567}'
    const parsed = parseJson<{ 'current-snapshot-id': bigint; n: number }>(text)
    expect(parsed['current-snapshot-id']).toBe(8_915_238_471_092_384_712n)
    expect(parsed.n).toBe(1234567)
    expect(stringifyJson(parsed)).toBe(text.replace(/: /g, ':').replace(/, /g, ','))
  })
})
