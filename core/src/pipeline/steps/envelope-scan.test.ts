import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { envelopeSchema } from '@adc/schemas'
import { scanEnvelope } from './envelope-scan.js'
import { testEnvelope, toRecord, trafficMix } from '../../testing/events.js'
import { arbTypedEnvelope, asJson, shape } from '../../testing/envelope-arbitrary.js'

/** What JSON.parse and the schema make of a record's text: the envelope, or undefined when either refuses. */
function bySchema(text: string): unknown {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  const parsed = envelopeSchema.safeParse(json)
  return parsed.success ? parsed.data : undefined
}

/** The scan answers nothing, or exactly the schema's envelope: same values, same key order. */
function agrees(text: string): boolean {
  const scanned = scanEnvelope(text)
  if (scanned === undefined) return false
  const expected = bySchema(text)
  expect(expected, text).toBeDefined()
  expect(scanned).toStrictEqual(expected)
  expect(shape(scanned)).toStrictEqual(shape(expected))
  return true
}

/**
 * Generated envelopes, mostly without the keys the edge and client schemas strip (the generator
 * nearly always adds them, and the scan leaves any key it does not know to the schema).
 */
const arbScannable = fc.tuple(arbTypedEnvelope, fc.integer({ min: 0, max: 9 })).map(([raw, dice]) => {
  if (dice > 0) {
    delete (raw.edge as Record<string, unknown> | undefined)?.extra
    delete (raw.client as Record<string, unknown> | undefined)?.ip
  }
  return raw
})

/** Ways a producer other than the edge writes the same JSON value, or a near miss of it, as text. */
const MUTATIONS: Array<(text: string, at: number) => string> = [
  // Whitespace JSON allows, between tokens or at either end.
  (t, at) => t.slice(0, at) + ' ' + t.slice(at),
  (t) => `\n${t}\t`,
  (t) => t.replace(/":/g, '": ').replace(/,"/g, ', "'),
  // A character escaped (the same string to JSON.parse), a quote or backslash inside a value.
  (t, at) => {
    const i = t.indexOf('":"', at % t.length)
    return i < 0 ? t : `${t.slice(0, i + 3)}\\u0041${t.slice(i + 3)}`
  },
  (t) => t.replace('"ipHash":"', '"ipHash":"\\"'),
  (t) => t.replace('"ua":"', '"ua":"\\\\'),
  // Numbers JSON.parse reads as the same integer, or as others.
  (t) => t.replace(/"receivedAt":(\d+)/, '"receivedAt":$1.0'),
  (t) => t.replace(/"ts":(\d+)/, '"ts":$1e0'),
  (t) => t.replace(/"v":1/, '"v":1.0'),
  (t) => t.replace(/"v":1/, '"v":10'),
  (t) => t.replace(/"v":1/, '"v":-1'),
  (t) => t.replace(/"ts":(\d+)/, '"ts":-$1'),
  (t) => t.replace(/"ts":(\d+)/, '"ts":0$1'),
  (t) => t.replace(/"asn":(\d+)/, '"asn":99999999999999999'),
  (t) => t.replace(/"receivedAt":\d+/, '"receivedAt":9007199254740993'),
  // A key twice (JSON.parse keeps the last), a key the schema does not name, null, nesting.
  (t) => t.replace('"edge":{', '"edge":{"source":"pixel",'),
  (t) => t.replace('"event":{', '"event":{"adId":"x",'),
  (t) => t.replace('{"v":1', '{"v":1,"v":2'),
  (t) => t.replace('{"v":1', '{"type":"click","v":1'),
  (t) => t.replace('"client":{', '"client":{"extra":1,'),
  (t) => t.replace('"edge":{', '"edge":{"colo":null,'),
  (t) => t.replace('"client":{', '"client":{"ua":["x"],'),
  (t) => t.replace('"event":{', '"event":{"__proto__":{},'),
  (t) => `${t.slice(0, -1)},"extra":{"a":[1,{"b":null}]}}`,
  // Key order changed: the type after the event, the event first.
  (t) => {
    const m = /,"type":"(\w+)"/.exec(t)
    return m ? `${t.replace(m[0], '').slice(0, -1)},"type":"${m[1]}"}` : t
  },
  // Text the scan must not take for its plain form: non-ASCII, a lone surrogate, controls, DEL.
  (t) => t.replace('"ua":"', '"ua":"é'),
  (t) => t.replace('"ua":"', '"ua":"\ud800'),
  (t) => t.replace('"userKey":"', '"userKey":"\u007f'),
  (t) => t.replace('"placement":"', '"placement":"\\u0000'),
  // Truncated, or with something after the end.
  (t, at) => t.slice(0, at % t.length),
  (t) => `${t}x`,
  (t) => `${t}}`,
]

describe('scanEnvelope', () => {
  it('answers nothing, or exactly what JSON.parse and the schema answer (values and key order), for generated envelopes', () => {
    let scanned = 0
    let schemaAccepted = 0
    fc.assert(
      fc.property(arbScannable, (raw) => {
        const text = JSON.stringify(raw)
        if (bySchema(text) !== undefined) schemaAccepted++
        if (agrees(text)) scanned++
      }),
      { numRuns: 20_000 },
    )
    // Not vacuous: the generator reaches valid envelopes, and many take the scan (about a third: the
    // generator gives a third of agents and user keys a non-ASCII letter and a quarter of times as
    // ISO text, all of them the schema's).
    expect(schemaAccepted).toBeGreaterThan(2000)
    expect(scanned).toBeGreaterThan(schemaAccepted / 5)
  })

  it('answers nothing, or exactly what JSON.parse and the schema answer, for the same envelopes written otherwise or broken', () => {
    let scanned = 0
    fc.assert(
      fc.property(arbScannable, fc.integer({ min: 0, max: MUTATIONS.length - 1 }), fc.nat(), fc.nat(), (raw, m, at, at2) => {
        const once = MUTATIONS[m]!(JSON.stringify(raw), at % 700)
        const twice = MUTATIONS[(m + at2) % MUTATIONS.length]!(once, at2 % 700)
        for (const text of [once, twice]) if (agrees(text)) scanned++
      }),
      { numRuns: 20_000 },
    )
    expect(scanned).toBeGreaterThan(0)
  })

  it('reads every record of the processor bench traffic as the schema does', () => {
    const { records } = trafficMix(3000, { timedIds: true, randomImpressionIds: true })
    for (const r of records) expect(agrees(r.value)).toBe(true)
  })

  it('reads what the edge writes, impressions and clicks, with every optional field', () => {
    for (const type of ['impression', 'click'] as const) {
      const env = testEnvelope({ type, n: 1, impressionId: 'imp_1', ts: 1_795_455_805_000, userKey: 'u1', prefetch: type === 'click', configVersion: 7 })
      const json = asJson(env) as { edge: Record<string, unknown>; client: Record<string, unknown>; event: Record<string, unknown> }
      json.edge.asn = 13335
      json.client.uaHash = 'ab'.repeat(32)
      Object.assign(json.event, { placement: 'top', consent: true, ...(type === 'impression' ? { viewable: false, viewMethod: 'mrc_50_1s' } : {}) })
      expect(agrees(JSON.stringify(json))).toBe(true)
      expect(agrees(toRecord(env).value)).toBe(true)
    }
  })

  it('leaves to JSON.parse and the schema what they transform, refuse or strip', () => {
    const text = toRecord(testEnvelope({ type: 'impression', n: 1, impressionId: 'imp_1', ts: 1_795_455_805_000 })).value
    for (const other of [
      text.replace(/"ts":\d+/, '"ts":"2026-11-23T10:00:00Z"'), // the schema turns ISO text into epoch ms
      text.replace('"event":{', '"event":{"ua":"Mozilla/5.0",'), // the event schema refuses it
      text.replace('"edge":{', '"edge":{"extra":1,'), // the edge schema strips it
      text.replace('"geo":"US"', '"geo":"us"'),
      text.replace('"ua":"', '"ua":"\\ud800'),
      text.replace('"ua":"', '"ua":"\\u0041'),
      text.replace('{"v":1', '{"v":2'),
      '[]', '', '{}', 'null',
    ]) expect(scanEnvelope(other)).toBeUndefined()
  })
})
