import { describe, expect, it } from 'vitest'
import { envelopeSchema } from '@adc/schemas'
import { testEnvelope } from '../testing/events.js'
import { scoreEnvelope } from './rules.js'

const T = Date.UTC(2026, 10, 23, 12, 0, 0)

describe('sender-side hashes are opaque to the IVT rules', () => {
  it('a web event with only a uaHash is not judged as missing its agent, and its hash is never parsed', () => {
    const base = testEnvelope({ type: 'impression', n: 1, impressionId: 'imp_h1', ts: T, ua: null })
    const hashed = envelopeSchema.parse({ ...base, client: { ipHash: 'ab'.repeat(32), uaHash: 'cd'.repeat(32) } })
    expect(scoreEnvelope(hashed, {})).toEqual({ score: 0, reasons: [] })
    // Without agent and hash the web rule still applies.
    const bare = envelopeSchema.parse({ ...base, client: { ipHash: 'ab'.repeat(32) } })
    expect(scoreEnvelope(bare, {}).reasons).toEqual(['givt_missing_ua'])
  })

  it('a raw agent beside its hash is still judged', () => {
    const base = testEnvelope({ type: 'impression', n: 2, impressionId: 'imp_h2', ts: T, ua: 'curl/8.5.0' })
    const env = envelopeSchema.parse({ ...base, client: { ...base.client, uaHash: 'cd'.repeat(32) } })
    expect(scoreEnvelope(env, {}).reasons).toContain('givt_known_bot')
  })
})
