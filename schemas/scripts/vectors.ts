/**
 * Test vectors every implementation checks itself against (edge, core, the SDKs in any language),
 * computed by the reference code in schemas/src. Inputs are fixed, so the output is deterministic:
 * `npm run -w schemas vectors` rewrites schemas/vectors/*.json, and schemas/src/vectors.test.ts
 * fails when the committed files and the reference code disagree. Fields: schemas/vectors/README.md.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { envelopeSchema, type EventType } from '../src/index.js'
import { idempotencyKey, murmur2, partitionFor } from '../src/keys.js'
import { sha256Hex, signingString, signRequest } from '../src/signing.js'
import { mintToken, verifyToken, type TokenPayload } from '../src/token.js'

export const VECTORS_DIR = join(import.meta.dirname, '..', 'vectors')

/** A date past any test run, so the tokens stay valid: 2100-01-01T00:00:00Z. */
const FAR_EXP = 4_102_444_800

export async function idempotencyVectors() {
  const inputs: Array<[string, EventType, string]> = [
    ['pub_demo', 'impression', '01JD0000000000000000000001'],
    ['pub_demo', 'click', '01JD0000000000000000000001'],
    ['pub_demo', 'impression', '01jd0000000000000000000001'],
    ['p', 'click', '01ARZ3NDEKTSV4RRFFQ69G5FAV'],
    ['publisher.with:all-the_chars', 'impression', '7ZZZZZZZZZZZZZZZZZZZZZZZZZ'],
    ['x'.repeat(128), 'click', '00000000000000000000000000'],
  ]
  const cases = []
  for (const [publisherId, eventType, eventId] of inputs) {
    cases.push({ publisherId, eventType, eventId, key: await idempotencyKey(publisherId, eventType, eventId) })
  }
  return {
    description: 'Delivery idempotency key: hex of the first 16 bytes of SHA-256 over UTF-8 `publisherId U+001F eventType U+001F eventId`.',
    cases,
  }
}

export function partitionVectors() {
  const keys = [
    '', '21', 'foobar', 'abc', 'a-little-bit-long-string', 'a-little-bit-longer-string', 'lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8',
    'imp_1', 'imp_demo_000001', 'imp_2026-12-01T10:00:00Z_abc', 'pub_demo\u001f01JD0000', 'pub_demo\u001f01ARZ3ND',
    'ü', '日本語のキー', '🎯 emoji key', 'x'.repeat(129),
  ]
  return {
    description: "Kafka's murmur2 (Java client Utils.murmur2, seed 0x9747b28c) over the UTF-8 key as a signed 32-bit int; partition = (murmur2 & 0x7fffffff) % n. Log partitions use the impressionId; the edge's DedupeShard uses `publisherId U+001F first 8 ULID characters upper-cased`.",
    cases: keys.map((key) => ({ key, murmur2: murmur2(key), partitions8: partitionFor(key, 8), partitions32: partitionFor(key, 32) })),
  }
}

export async function signatureVectors() {
  const inputs = [
    { secret: 'demo-signing-secret-dev', timestamp: 1_764_590_400, method: 'POST', path: '/v1/events/impressions:batch', body: '{"events":[{"eventId":"01JD0000000000000000000001"}]}' },
    { secret: 'secret-one', timestamp: 1_800_000_000, method: 'post', path: '/v1/events/clicks:batch', body: '' },
    { secret: 'ünïcödé secret', timestamp: 1, method: 'POST', path: '/v1/events/validate-signature', body: '{"note":"日本語 🎯"}' },
  ]
  const cases = []
  for (const c of inputs) {
    const bodySha256 = await sha256Hex(c.body)
    cases.push({ ...c, bodySha256, signingString: signingString(c.timestamp, c.method, c.path, bodySha256), signature: await signRequest(c.secret, c.timestamp, c.method, c.path, c.body) })
  }
  return {
    description: 'HMAC request signing: X-Adc-Signature = base64url (no padding) of HMAC-SHA256(UTF-8 secret, `${timestamp}.${METHOD upper-cased}.${path}.${hex SHA-256 of the body bytes}`).',
    cases,
  }
}

export async function tokenVectors() {
  const base = { impressionId: 'imp_1', campaignId: 'cmp_demo_cpc', adId: 'ad_1', publisherId: 'pub_demo', requestId: 'req_1', exp: FAR_EXP }
  const valid: Array<{ kind: 'pixel' | 'click'; keyId: string; secret: string; payload: TokenPayload }> = [
    { kind: 'pixel', keyId: 'demo', secret: 'demo-signing-secret-dev', payload: base },
    { kind: 'pixel', keyId: 'k1', secret: 'secret-one', payload: { ...base, channel: 'app' } },
    { kind: 'click', keyId: 'demo', secret: 'demo-signing-secret-dev', payload: { ...base, url: 'https://advertiser.example/landing?x=1&y=ü' } },
    { kind: 'click', keyId: 'key_with-dashes_9', secret: 'ünïcödé secret', payload: { ...base, url: 'http://example.com/', channel: 's2s' } },
  ]
  const cases = []
  for (const v of valid) cases.push({ ...v, token: await mintToken(v.payload, v.keyId, v.secret), valid: true })
  const good = cases[0]!.token
  const [ver, kid, body, sig] = good.split('.') as [string, string, string, string]
  const invalid = [
    { why: 'signature by another secret', token: await mintToken(base, 'demo', 'not-the-secret') },
    { why: 'payload changed after signing', token: `${ver}.${kid}.${body.slice(0, -2)}${body.slice(-2) === 'fQ' ? 'fR' : 'fQ'}.${sig}` },
    { why: 'unknown version', token: `v2.${kid}.${body}.${sig}` },
    { why: 'padded base64', token: `${good}=` },
    { why: 'expired', token: await mintToken({ ...base, exp: 1_000_000_000 }, 'demo', 'demo-signing-secret-dev') },
  ]
  const secrets = { demo: 'demo-signing-secret-dev' }
  const rejected = []
  for (const c of invalid) {
    const r = await verifyToken(c.token, (id) => secrets[id as keyof typeof secrets], FAR_EXP - 1)
    if (r.ok) throw new Error(`vector "${c.why}" verifies`)
    rejected.push({ ...c, reason: r.reason })
  }
  return {
    description: 'Signed pixel and click tokens `v1.<keyId>.<payload>.<sig>`: payload = base64url (no padding) of the UTF-8 JSON with keys in the order impressionId, campaignId, adId, publisherId, requestId, exp, url, channel (absent keys left out); sig = base64url (no padding) of HMAC-SHA256(secret, ASCII `v1.<keyId>.<payload>`). `invalid` tokens must fail verification with `reason` at `verifyAt` (Unix seconds) given `secrets`.',
    verifyAt: FAR_EXP - 1,
    secrets,
    valid: cases,
    invalid: rejected,
  }
}

export function envelopeVectors() {
  const event = { eventId: '01JD0000000000000000000001', ts: 1_764_590_400_000, adId: 'ad_1', campaignId: 'cmp_demo_cpm', publisherId: 'pub_demo', requestId: 'req_1', impressionId: 'imp_1' }
  const base = { v: 1, key: 'a3c1f3d2b4e5968778695a4b3c2d1e0f', receivedAt: 1_764_590_401_234 }
  const inputs: Array<{ why: string; input: unknown }> = [
    { why: 'minimal impression', input: { ...base, type: 'impression', edge: { dedupe: 'new', source: 'batch' }, client: {}, event } },
    {
      why: 'impression with every field',
      input: {
        ...base, type: 'impression', edge: { colo: 'FRA', country: 'DE', asn: 3320, dedupe: 'skipped', source: 'beacon' },
        client: { ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)', ipPrefix: '81.2.69.0/24', ipHash: 'f00d' },
        event: { ...event, userKey: 'u_1', channel: 'web', device: 'mobile', geo: 'DE', placement: 'top', consent: true, viewable: true },
      },
    },
    { why: 'click without consent keeps no client facts', input: { ...base, type: 'click', edge: { dedupe: 'new', source: 'redirect', prefetch: false }, client: {}, event: { ...event, clickId: 'clk_1', consent: false } } },
    { why: 'event time as ISO-8601 is normalised to epoch ms', input: { ...base, type: 'impression', edge: { dedupe: 'new', source: 's2s' }, client: {}, event: { ...event, ts: '2025-12-01T12:00:00.000Z' } } },
  ]
  const invalidInputs: Array<{ why: string; input: unknown }> = [
    { why: 'unknown version', input: { ...(inputs[0]!.input as object), v: 2 } },
    { why: 'raw ip never leaves the edge', input: { ...(inputs[0]!.input as object), event: { ...event, ip: '81.2.69.160' } } },
    { why: 'click without clickId', input: { ...(inputs[0]!.input as object), type: 'click' } },
    { why: 'key is not 32 hex characters', input: { ...(inputs[0]!.input as object), key: 'A3C1' } },
  ]
  return {
    description: 'The v1 log envelope: each `valid` input parses to `output` (JSON), and `output` parses to itself (a round trip); each `invalid` input is refused.',
    valid: inputs.map(({ why, input }) => {
      const parsed = envelopeSchema.parse(input)
      return { why, input, output: JSON.parse(JSON.stringify(parsed)) as unknown }
    }),
    invalid: invalidInputs.map(({ why, input }) => {
      if (envelopeSchema.safeParse(input).success) throw new Error(`vector "${why}" parses`)
      return { why, input }
    }),
  }
}

export async function allVectors(): Promise<Record<string, unknown>> {
  return {
    'idempotency-keys.json': await idempotencyVectors(),
    'partitions.json': partitionVectors(),
    'request-signatures.json': await signatureVectors(),
    'tokens.json': await tokenVectors(),
    'envelopes.json': envelopeVectors(),
  }
}

export const render = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`

if (process.argv[1] === import.meta.filename) {
  for (const [name, value] of Object.entries(await allVectors())) writeFileSync(join(VECTORS_DIR, name), render(value))
  console.log(`written to ${VECTORS_DIR}`)
}
