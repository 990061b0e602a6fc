import { envelopeSchema } from '@adc/schemas'
import { describe, expect, it } from 'vitest'
import { buildEnvelope, type EnvelopeContext } from './envelope.js'

const event = {
  eventId: '01JD0000000000000000000001', ts: Date.UTC(2026, 0, 5, 12), adId: 'ad_1', campaignId: 'cmp_1', publisherId: 'pub_1',
  requestId: 'req_1', impressionId: 'imp_1', channel: 'web' as const,
}
const ctx = (configVersion: number | undefined): EnvelopeContext => ({
  source: 'batch', observed: { ua: 'Mozilla/5.0 test', ip: '203.0.113.7' }, edge: {}, receivedAt: Date.UTC(2026, 0, 5, 12), ...(configVersion !== undefined ? { configVersion } : {}),
})
const build = (configVersion: number | undefined) =>
  buildEnvelope({ type: 'impression', event, key: 'ab'.repeat(16), dedupe: 'new' }, ctx(configVersion), 'ip-hash-secret')

describe('buildEnvelope: edge.configVersion', () => {
  it('stamps the version of the tenant config core served', async () => {
    const envelope = await build(42)
    expect(envelope.edge.configVersion).toBe(42)
    expect(envelopeSchema.safeParse(envelope).error?.issues).toBeUndefined()
  })

  // A static EDGE_CONFIG_JSON may carry any integer as its version (the edge config schema allows
  // it); core refuses an envelope whose configVersion is not a non-negative safe integer, so every
  // event accepted with such a config would become a bad row, never billed.
  it.each([-1, -1_000, 2 ** 53, 1.5])('never stamps a version the envelope contract refuses (%s): the envelope stays valid', async (v) => {
    const envelope = await build(v)
    expect(envelope.edge.configVersion).toBeUndefined()
    expect(envelopeSchema.safeParse(envelope).error?.issues).toBeUndefined()
  })
})
