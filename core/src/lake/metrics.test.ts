import { describe, expect, it } from 'vitest'
import { columnMetrics, utf8Compare } from './metrics.js'
import { LAKE_COLUMNS } from './schema.js'
import type { EventRow } from '../sinks/sink.js'

const sign = (n: number) => Math.sign(n)

describe('utf8Compare', () => {
  it('orders strings as their UTF-8 bytes, past surrogates and units from U+E000 up', () => {
    const words = ['', 'a', 'ab', 'b', 'é', '\uffff', '\ue000', '😀', '😀a', '\ud800', '\udfff', 'a\ud800b', 'a\ud800c', 'a\ud83d\ude00', 'a\uffff', 'zz', 'Z']
    for (const a of words) {
      for (const b of words) expect([a, b, sign(utf8Compare(a, b))]).toEqual([a, b, sign(Buffer.compare(Buffer.from(a), Buffer.from(b)))])
    }
  })
})

describe('columnMetrics', () => {
  it('bounds a string column by byte order, not UTF-16 order', () => {
    const column = LAKE_COLUMNS.find((c) => c.name === 'geo')!
    // UTF-16 puts U+FFFF after the surrogate pair of 😀; UTF-8 puts it before.
    const rows = ['\uffff', '😀', 'a'].map((geo) => ({ geo }) as unknown as EventRow)
    const m = columnMetrics(rows, [column], [{ id: 7, name: 'geo', required: true, type: 'string' }])
    expect(m.lower.get(7)).toEqual(Buffer.from('a'))
    expect(m.upper.get(7)).toEqual(Buffer.from('😀'))
  })
})
