import type { EventRow } from '../sinks/sink.js'
import type { DataFile } from './manifest.js'
import type { IcebergField, LakeColumn } from './schema.js'

/** Bytes of a string bound: Iceberg's default metrics mode, truncate(16). */
export const TRUNCATE = 16

export function truncatedLower(s: string): Buffer {
  const b = Buffer.from(s)
  if (b.length <= TRUNCATE) return b
  let end = TRUNCATE
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end-- // never cut inside a UTF-8 sequence
  return b.subarray(0, end)
}

export function long(n: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigInt64LE(n)
  return b
}

/**
 * Orders two strings as their UTF-8 bytes (Iceberg's string order) without encoding them: below
 * U+D800, UTF-16 code units order as code points and so as UTF-8. Past a surrogate or a unit from
 * U+E000 up, the bytes decide (a lone surrogate encodes as U+FFFD, as Buffer.from writes it).
 */
export function utf8Compare(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    if (x < 0xd800 && y < 0xd800) return x - y
    return Buffer.compare(Buffer.from(a), Buffer.from(b))
  }
  return a.length - b.length
}

/** A column's bounds over a data file: strings as text, ints and times (epoch ms) as numbers, longs as bigints. */
export type Bounds = readonly [lo: string | number | bigint, hi: string | number | bigint]

/** Whether a column carries bounds in the metrics (floats and lists carry counts only). */
export const hasBounds = (c: LakeColumn): boolean => c.type !== 'float' && c.type !== 'list<string>'

/**
 * Column metrics of one data file of `count` rows from each column's bounds (see columnMetrics):
 * counts for every column, bounds for ints, longs, timestamps (µs) and strings. A string bound is
 * kept only when it fits 16 bytes, else the lower bound is its prefix and the upper bound is left out.
 */
export function metricsOf(count: number, columns: readonly LakeColumn[], fields: IcebergField[], bounds: (c: LakeColumn) => Bounds | undefined): NonNullable<DataFile['metrics']> {
  const ids = new Map(fields.map((f) => [f.name, f.id]))
  const m: NonNullable<DataFile['metrics']> = { valueCounts: new Map(), nullCounts: new Map(), lower: new Map(), upper: new Map() }
  for (const c of columns) {
    const id = ids.get(c.name)
    if (id === undefined || c.type === 'list<string>') continue
    m.valueCounts.set(id, count)
    m.nullCounts.set(id, 0)
    if (count === 0 || !hasBounds(c)) continue
    const b = bounds(c)
    if (!b) continue
    const [lo, hi] = b
    if (c.type === 'string') {
      m.lower.set(id, truncatedLower(String(lo)))
      const upper = Buffer.from(String(hi))
      if (upper.length <= TRUNCATE) m.upper.set(id, upper)
    } else if (c.type === 'int') {
      const [a, z] = [Buffer.alloc(4), Buffer.alloc(4)]
      a.writeInt32LE(Number(lo))
      z.writeInt32LE(Number(hi))
      m.lower.set(id, a)
      m.upper.set(id, z)
    } else {
      // long, or timestamptz as epoch ms scaled to µs
      const scale = c.type === 'timestamptz' ? 1000n : 1n
      m.lower.set(id, long(BigInt(lo) * scale))
      m.upper.set(id, long(BigInt(hi) * scale))
    }
  }
  return m
}

/** Column metrics of one data file from its row objects (see metricsOf). */
export function columnMetrics(rows: EventRow[], columns: readonly LakeColumn[], fields: IcebergField[]): NonNullable<DataFile['metrics']> {
  return metricsOf(rows.length, columns, fields, (c) => {
    if (c.type === 'string') {
      let lo = String(c.value(rows[0]!))
      let hi = lo
      for (const r of rows) {
        const v = String(c.value(r))
        if (v === lo || v === hi) continue
        if (utf8Compare(v, lo) < 0) lo = v
        else if (utf8Compare(v, hi) > 0) hi = v
      }
      return [lo, hi]
    }
    let lo = Infinity
    let hi = -Infinity
    for (const r of rows) {
      const v = Number(c.value(r))
      if (v < lo) lo = v
      if (v > hi) hi = v
    }
    return [lo, hi]
  })
}
