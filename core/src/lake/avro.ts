import avro from 'avsc'
import { randomBytes } from 'node:crypto'
import { inflateRawSync } from 'node:zlib'

/**
 * Avro object container files (the format of Iceberg manifests and manifest lists), written by hand
 * around avsc's record encoder so the writer schema in the header keeps Iceberg's `field-id`,
 * `element-id`, `key-id` and `value-id` attributes verbatim (avsc drops unknown attributes when it
 * re-serialises a schema, and Iceberg readers resolve fields by those ids).
 */

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]) // 'Obj' 1

/**
 * Avro `long` as bigint on read (snapshot ids written by other engines use all 63 bits), number or
 * bigint on write.
 */
const BigLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: number | bigint) => {
    const buf = Buffer.alloc(8)
    buf.writeBigInt64LE(BigInt(n))
    return buf
  },
  fromJSON: (n: number | string) => BigInt(n),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint' || Number.isInteger(n),
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
})
/**
 * The avsc type of a schema, compiled once per distinct schema text: avsc generates and compiles
 * code for each type it builds (about 2 ms for a manifest entry's), and a writer meets the same few
 * schemas on every commit. Bounded: another engine's manifests may bring schemas of their own.
 */
const types = new Map<string, avro.Type>()
const MAX_CACHED_TYPES = 64
function typeOf(schema: unknown, text = JSON.stringify(schema)): avro.Type {
  let type = types.get(text)
  if (!type) {
    type = avro.Type.forSchema(schema as avro.Schema, { registry: { long: BigLong }, wrapUnions: false })
    if (types.size >= MAX_CACHED_TYPES) types.delete(types.keys().next().value!)
    types.set(text, type)
  }
  return type
}
const META = avro.Type.forSchema({ type: 'map', values: 'bytes' })
const LONG = avro.Type.forSchema('long')

/** Encodes `records` as an Avro container file with `schema` (a JSON schema object) and metadata. */
export function writeAvroFile(schema: object, records: unknown[], metadata: Record<string, string>): Buffer {
  const text = JSON.stringify(schema)
  const type = typeOf(schema, text)
  const sync = randomBytes(16)
  const meta: Record<string, Buffer> = { 'avro.schema': Buffer.from(text), 'avro.codec': Buffer.from('null') }
  for (const [k, v] of Object.entries(metadata)) meta[k] = Buffer.from(v)
  const parts: Buffer[] = [MAGIC, META.toBuffer(meta), sync]
  if (records.length > 0) {
    const body = Buffer.concat(records.map((r) => type.toBuffer(r)))
    parts.push(LONG.toBuffer(records.length), LONG.toBuffer(body.length), body, sync)
  }
  return Buffer.concat(parts)
}

export interface AvroFile {
  schema: unknown
  metadata: Record<string, string>
  records: Record<string, unknown>[]
}

/** Decodes an Avro container file (codec `null` or `deflate`, as Iceberg writers use). */
export function readAvroFile(buf: Buffer): AvroFile {
  if (!buf.subarray(0, 4).equals(MAGIC)) throw new RangeError('not an Avro container file')
  let pos = 4
  const header = META.decode(buf, pos)
  pos = header.offset
  const meta = header.value as Record<string, Buffer>
  const sync = buf.subarray(pos, pos + 16)
  pos += 16
  const metadata: Record<string, string> = {}
  for (const [k, v] of Object.entries(meta)) metadata[k] = v.toString()
  const schemaText = metadata['avro.schema'] ?? 'null'
  const schema = JSON.parse(schemaText) as unknown
  const codec = metadata['avro.codec'] ?? 'null'
  if (codec !== 'null' && codec !== 'deflate') throw new RangeError(`unsupported Avro codec ${codec}`)
  const type = typeOf(schema, schemaText)
  const records: Record<string, unknown>[] = []
  while (pos < buf.length) {
    const count = LONG.decode(buf, pos)
    const size = LONG.decode(buf, count.offset)
    const start = size.offset
    const raw = buf.subarray(start, start + (size.value as number))
    const block = codec === 'deflate' ? inflateRawSync(raw) : raw
    let at = 0
    for (let i = 0; i < (count.value as number); i++) {
      const rec = type.decode(block, at)
      records.push(rec.value as Record<string, unknown>)
      at = rec.offset
    }
    pos = start + (size.value as number)
    if (!buf.subarray(pos, pos + 16).equals(sync)) throw new RangeError('Avro sync marker mismatch')
    pos += 16
  }
  return { schema, metadata, records }
}
