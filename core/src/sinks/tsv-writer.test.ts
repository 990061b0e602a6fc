import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { TsvWriter } from './tsv-writer.js'

/** The TabSeparated escaping, written the plain way, as the reference. */
const reference = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')

describe('TsvWriter', () => {
  it('writes any string escaped exactly like the reference, UTF-8 included', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '\t', '\n', '\r', '\\', "'", '😀', 'z', ' ') })), fc.array(fc.string({ unit: 'grapheme' }), { maxLength: 3 }), (xs, ys) => {
        const w = new TsvWriter(4) // tiny: every test grows the buffer
        const fields = [...xs, ...ys]
        fields.forEach((f, i) => (i > 0 ? w.tab() : w).str(f))
        w.newline()
        expect(w.bytes().toString('utf8')).toBe(fields.map(reference).join('\t') + '\n')
      }),
      { numRuns: 300 },
    )
  })

  it('writes numbers and raw ASCII as they print', () => {
    const w = new TsvWriter(1)
    w.num(0).tab().num(-1).tab().num(0.85).tab().num(1_795_455_805_257).tab().raw('2026-11-23 10:00:00.123').newline()
    expect(w.bytes().toString()).toBe('0\t-1\t0.85\t1795455805257\t2026-11-23 10:00:00.123\n')
    expect(w.length).toBe(w.bytes().length)
  })
})
