import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { recordValueTexts } from './raw-values.js'

describe('recordValueTexts', () => {
  it('gives each record value\'s own JSON text, which parses to what JSON.parse of the body holds', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ key: fc.option(fc.string(), { nil: undefined }), value: fc.option(fc.jsonValue(), { nil: undefined }), partition: fc.option(fc.nat(7), { nil: undefined }) }, { requiredKeys: [] }), { minLength: 1, maxLength: 8 }),
      fc.constantFrom(undefined, 0, 2, '\t'),
      (records, indent) => {
        const text = JSON.stringify({ before: ['}', '"', { records: 1 }], records, after: 'x' }, null, indent)
        const parsed = JSON.parse(text) as { records: { value?: unknown }[] }
        const texts = recordValueTexts(text)
        expect(texts).toHaveLength(parsed.records.length)
        texts!.forEach((t, i) => {
          if (!('value' in parsed.records[i]!)) expect(t).toBeUndefined()
          else expect(JSON.parse(t!)).toEqual(parsed.records[i]!.value)
        })
      },
    ), { numRuns: 300 })
  })

  it('keeps the bytes as sent (spacing, key order, escapes) and takes the last of repeated keys like JSON.parse', () => {
    const text = '{ "records" : [ { "value" : {"b": 1,  "a":"\\u00e9\\"}"} , "key":"k" }, {"value":1,"value":[2]}, {"key":"x"} ] }'
    expect(recordValueTexts(text)).toEqual(['{"b": 1,  "a":"\\u00e9\\"}"}', '[2]', undefined])
    expect(recordValueTexts('{"records":[{"val\\u0075e":true}]}')).toEqual(['true'])
  })

  it('answers undefined for a body whose records are not objects (the caller stringifies instead)', () => {
    expect(recordValueTexts('{"records":[1,2]}')).toBeUndefined()
    expect(recordValueTexts('[1]')).toBeUndefined()
    expect(recordValueTexts('{"records":{}}')).toBeUndefined()
  })
})
