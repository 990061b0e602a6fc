import { describe, expect, it } from 'vitest'
import type { RawRecord } from '../types.js'
import { testEnvelope } from '../../testing/events.js'
import { T } from '../../testing/records.js'
import { createDecodeStep } from './decode-step.js'

describe('decodeStep', () => {
  const decode = createDecodeStep()
  const raw = (payload: string): RawRecord => ({ ref: { topic: 'ad-events', partition: 0, offset: 1 }, payload, appendedAt: 0 })
  it('turns a valid envelope into a decoded event', async () => {
    const r = await decode(raw(JSON.stringify(testEnvelope({ type: 'impression', n: 1, impressionId: 'i1', ts: T }))))
    expect(r.kind).toBe('ok')
  })
  it('keeps non-JSON, other versions and schema violations as bad rows with the payload', async () => {
    expect(await decode(raw('{oops'))).toMatchObject({ kind: 'bad_row', reason: 'bad_envelope', payload: '{oops' })
    expect(await decode(raw('{"v":2}'))).toMatchObject({ kind: 'bad_row', reason: 'unknown_version' })
    const noCampaign = testEnvelope({ type: 'impression', n: 1, impressionId: 'i1', ts: T }) as { event: Record<string, unknown> }
    delete noCampaign.event.campaignId
    const r = await decode(raw(JSON.stringify(noCampaign)))
    expect(r).toMatchObject({ kind: 'bad_row', reason: 'bad_envelope' })
    expect(r.kind === 'bad_row' && r.error).toContain('campaignId')
  })
})
