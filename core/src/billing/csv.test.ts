import { describe, expect, it } from 'vitest'
import { csvField } from './csv.js'

describe('csvField', () => {
  it('quotes per RFC 4180 and defuses text a spreadsheet would run as a formula, never numbers', () => {
    expect(csvField('cmp_1')).toBe('cmp_1')
    expect(csvField('a,b')).toBe('"a,b"')
    expect(csvField('say "hi"')).toBe('"say ""hi"""')
    expect(csvField('-A1')).toBe("'-A1")
    expect(csvField('=cmd|calc')).toBe("'=cmd|calc")
    expect(csvField('+1')).toBe("'+1")
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)")
    expect(csvField('=1,2')).toBe(`"'=1,2"`)
    expect(csvField(-500_000)).toBe('-500000')
  })
})
