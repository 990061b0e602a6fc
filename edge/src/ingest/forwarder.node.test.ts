import { base64Decode, binaryRecord, murmur2, partitionFor } from '@adc/schemas'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { produce, produceBody, type ProduceOptions } from './forwarder.js'

/**
 * The edge's produce request must mean the same record bytes to Confluent's REST proxy as to core's
 * gateway. Confluent's v2 produce decodes a binary-format record's key and value from base64 (its
 * NoSchemaRecordSerializer) and its producer places a keyed record by murmur2 over the key bytes;
 * a JSON-format key would instead be stored as its JSON text (`"imp_1"`), on another partition.
 */
function capture(): { opts: ProduceOptions; requests: { headers: Headers; body: string }[] } {
  const requests: { headers: Headers; body: string }[] = []
  const fetcher = (async (_url: string, init: RequestInit) => {
    requests.push({ headers: new Headers(init.headers), body: String(init.body) })
    const n = (JSON.parse(String(init.body)) as { records: unknown[] }).records.length
    const offsets = Array.from({ length: n }, (_, i) => ({ partition: 0, offset: i, error_code: null, error: null }))
    return new Response(JSON.stringify({ offsets, key_schema_id: null, value_schema_id: null }), { status: 200 })
  }) as unknown as typeof fetch
  return { requests, opts: { baseUrl: 'http://127.0.0.1:1', timeoutMs: 1000, auth: { user: 'u', password: 'password-123' }, fetcher } }
}

describe('edge produce requests', () => {
  it('use the binary embedded format: base64 of the raw key bytes and of the UTF-8 JSON value', async () => {
    const { opts, requests } = capture()
    const value = { type: 'impression', event: { impressionId: 'imp_é1', ua: 'Mozilla/5.0 ✓' } }
    const outcomes = await produce('ad-events', [{ key: 'imp_é1', value }], opts)
    expect(outcomes).toEqual(['ok'])
    expect(requests[0]!.headers.get('content-type')).toBe('application/vnd.kafka.binary.v2+json')
    const body = JSON.parse(requests[0]!.body) as { records: { key: string; value: string }[] }
    // As Confluent's proxy decodes them: key and value bytes.
    const keyBytes = base64Decode(body.records[0]!.key)
    const valueBytes = base64Decode(body.records[0]!.value)
    expect(keyBytes).toEqual(new TextEncoder().encode('imp_é1'))
    expect(JSON.parse(new TextDecoder().decode(valueBytes!))).toEqual(value)
  })

  it('land on partitionFor(impressionId) behind Confluent, where the JSON format would move keys', async () => {
    const { opts, requests } = capture()
    const ids = Array.from({ length: 32 }, (_, i) => `imp_${i}`)
    await produce('ad-events', ids.map((id) => ({ key: id, value: { id } })), opts)
    const body = JSON.parse(requests[0]!.body) as { records: { key: string }[] }
    const confluent = body.records.map((r) => (murmur2(new TextDecoder().decode(base64Decode(r.key)!)) & 0x7fffffff) % 8)
    expect(confluent).toEqual(ids.map((id) => partitionFor(id, 8)))
    expect(ids.some((id) => partitionFor(JSON.stringify(id), 8) !== partitionFor(id, 8))).toBe(true)
  })
})

describe('produceBody', () => {
  const reference = (records: { key: string; value: unknown }[]) => JSON.stringify({ records: records.map((r) => binaryRecord(r.key, r.value)) })

  it('is byte for byte the binary embedded format of schemas (ASCII, non-ASCII, astral and lone surrogates)', () => {
    const records = [
      { key: 'imp_1', value: { v: 1, event: { ua: 'Mozilla/5.0', n: 3 } } },
      { key: 'imp_é', value: { ua: 'Ünïcödé — 日本語 😀', lone: '\ud800x' } },
      { key: 'k', value: 'x'.repeat(70_000) + 'é' },
    ]
    expect(produceBody(records)).toBe(reference(records))
  })

  it('matches the reference for any keys and JSON values', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ key: fc.string({ unit: 'binary', maxLength: 40 }), value: fc.jsonValue() }), { maxLength: 8 }),
      (records) => {
        expect(produceBody(records)).toBe(reference(records))
      },
    ), { numRuns: 300 })
  })
})
