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
 * Column metrics of one data file for Iceberg manifests (what lets readers skip files by value):
 * counts for every column, bounds for ints, longs, timestamps (µs) and strings. A string bound is
 * kept only when it fits 16 bytes, else the lower bound is its prefix and the upper bound is left out.
 */
export function columnMetrics(rows: EventRow[], columns: readonly LakeColumn[], fields: IcebergField[]): NonNullable<DataFile['metrics']> {
  const ids = new Map(fields.map((f) => [f.name, f.id]))
  const m: NonNullable<DataFile['metrics']> = { valueCounts: new Map(), nullCounts: new Map(), lower: new Map(), upper: new Map() }
  for (const c of columns) {
    const id = ids.get(c.name)
    if (id === undefined || c.type === 'list<string>') continue
    m.valueCounts.set(id, rows.length)
    m.nullCounts.set(id, 0)
    if (rows.length === 0 || c.type === 'float') continue
    if (c.type === 'string') {
      let lo = Buffer.from(String(c.value(rows[0]!)))
      let hi = lo
      for (const r of rows) {
        const b = Buffer.from(String(c.value(r)))
        if (Buffer.compare(b, lo) < 0) lo = b
        if (Buffer.compare(b, hi) > 0) hi = b
      }
      m.lower.set(id, truncatedLower(lo.toString()))
      if (hi.length <= TRUNCATE) m.upper.set(id, hi)
      continue
    }
    let lo = Infinity
    let hi = -Infinity
    for (const r of rows) {
      const v = Number(c.value(r))
      if (v < lo) lo = v
      if (v > hi) hi = v
    }
    if (c.type === 'int') {
      const [a, b] = [Buffer.alloc(4), Buffer.alloc(4)]
      a.writeInt32LE(lo)
      b.writeInt32LE(hi)
      m.lower.set(id, a)
      m.upper.set(id, b)
    } else {
      // long, or timestamptz as epoch ms scaled to µs
      const scale = c.type === 'timestamptz' ? 1000n : 1n
      m.lower.set(id, long(BigInt(lo) * scale))
      m.upper.set(id, long(BigInt(hi) * scale))
    }
  }
  return m
}
