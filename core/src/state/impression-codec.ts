import { deserialize, serialize } from 'node:v8'
import { isWellFormed } from '@adc/schemas'
import type { ImpressionState } from './keys.js'

/**
 * The committed form of an impression's state (`i:` keys, keys.ts): a few fixed-width bytes
 * instead of a msgpack record. Read for every click and duplicate, written for nearly every record,
 * so its encoding is on the processor's hot path. Measured on LMDB with the store's options and
 * 20k-key transactions (`bench/impression-state-bench.ts`, two alternating pairs): a read of a
 * committed state 2.45–2.65 instead of 3.21–3.71 µs of CPU, a put within the run-to-run noise
 * (6.97–7.95 against 6.48–8.74 µs, most of it LMDB's own), 135 instead of 147 bytes of B-tree page
 * per entry.
 *
 * Layout: `[VERSION][present: u8]` then, for each field present in `FIELDS` order, its value as a
 * float64 LE (offsets and epoch milliseconds are integers below 2^53: exact), then, when `ich` is
 * present, its UTF-8 length (u8) and bytes. Only the fields present are read back, so a state reads
 * exactly as it was written, `undefined` fields included.
 *
 * Anything that is not such a state (another shape, a channel longer than 255 bytes or with a lone
 * surrogate) is stored as
 * it is, and states written before this layout (msgpack records) read as they are: `decodeImpression`
 * answers every value it does not recognise unchanged. The changelog and snapshots carry the object
 * form (partition-store.ts decodes before it hands entries out), so their format did not change.
 */
const VERSION = 0xa1
const FIELDS = ['io', 'its', 'co', 'il', 'cl', 'ex'] as const
const ICH = 1 << FIELDS.length
const HEADER_BYTES = 2
const KNOWN = new Set<string>([...FIELDS, 'ich'])

function isState(v: unknown): v is ImpressionState {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return false
  for (const k in v) {
    if (!KNOWN.has(k)) return false
    const x = (v as Record<string, unknown>)[k]
    if (x === undefined) continue
    if (k === 'ich' ? typeof x !== 'string' : typeof x !== 'number') return false
  }
  return true
}

/** The bytes an impression state is committed as; any other value is answered unchanged. */
export function encodeImpression(v: unknown): unknown {
  if (!isState(v)) return v
  const ich = v.ich
  let ichBytes = 0
  let ascii = true
  if (ich !== undefined) {
    // A channel UTF-8 cannot carry exactly (a lone surrogate) stays as it was.
    for (let i = 0; i < ich.length && ascii; i++) ascii = ich.charCodeAt(i) < 0x80
    if (!ascii && !isWellFormed(ich)) return v
    ichBytes = ascii ? ich.length : Buffer.byteLength(ich, 'utf8')
    if (ichBytes > 0xff) return v
  }
  let present = 0
  let n = HEADER_BYTES
  for (let i = 0; i < FIELDS.length; i++) {
    if (v[FIELDS[i]!] === undefined) continue
    present |= 1 << i
    n += 8
  }
  if (ich !== undefined) {
    present |= ICH
    n += 1 + ichBytes
  }
  const b = Buffer.allocUnsafe(n)
  b[0] = VERSION
  b[1] = present
  let at = HEADER_BYTES
  for (let i = 0; i < FIELDS.length; i++) {
    const x = v[FIELDS[i]!]
    if (x === undefined) continue
    b.writeDoubleLE(x, at)
    at += 8
  }
  if (ich !== undefined) {
    b[at++] = ichBytes
    // Channels are short ASCII words: written here, without an encoded copy.
    if (ascii) for (let i = 0; i < ich.length; i++) b[at + i] = ich.charCodeAt(i)
    else b.write(ich, at, 'utf8')
  }
  return b
}

/** The state a committed value stands for: bytes of `encodeImpression`, or any other value unchanged. */
export function decodeImpression(v: unknown): unknown {
  if (!(v instanceof Uint8Array) || v.length < HEADER_BYTES || v[0] !== VERSION) return v
  const b = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  const present = b[1]!
  const out: ImpressionState = {}
  let at = HEADER_BYTES
  for (let i = 0; i < FIELDS.length; i++) {
    if ((present & (1 << i)) === 0) continue
    out[FIELDS[i]!] = b.readDoubleLE(at)
    at += 8
  }
  if (present & ICH) {
    const len = b[at]!
    out.ich = b.toString('utf8', at + 1, at + 1 + len)
  }
  return out
}

/**
 * Tag of a value `encodeImpression` does not lay out (another shape, a channel UTF-8 cannot carry
 * or longer than 255 bytes), held in the binary impression index (impression-index.ts) in V8's
 * serialization, which keeps any such value as it was.
 */
const SERIALIZED = 0xa2

/** The bytes any value is held as in the impression index: a state's layout, or anything else serialized. */
export function encodeImpressionBytes(v: unknown): Buffer {
  const laid = encodeImpression(v)
  if (laid instanceof Uint8Array) return laid as Buffer
  const body = serialize(v)
  const b = Buffer.allocUnsafe(1 + body.length)
  b[0] = SERIALIZED
  body.copy(b, 1)
  return b
}

/** The value bytes of `encodeImpressionBytes` stand for (read at once: lmdb may reuse a read's buffer). */
export function decodeImpressionBytes(b: Uint8Array): unknown {
  if (b.length > 0 && b[0] === SERIALIZED) return deserialize(b.subarray(1))
  return decodeImpression(b)
}
