import { describe, expect, it } from 'vitest'
import type { RawRecord } from '../types.js'
import { testEnvelope } from '../../testing/events.js'
import { T } from '../../testing/records.js'
import { createDecodeStep } from './decode-step.js'

describe('decodeStep', () => {
  const decode = createDecodeStep()
  const raw = (payload: string): RawRecord => ({ ref: { topic: 'ad-events', partition: 0, offset: 1 }, payload, appendedAt: T + 60_000 })
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
  it('keeps an envelope received, it says, more than an hour after the log received it as a bad row', async () => {
    const at = (receivedAt: number, extra: Record<string, unknown> = {}) => decode(raw(JSON.stringify({ ...testEnvelope({ type: 'impression', n: 1, impressionId: 'i1', ts: T, receivedAt }), ...extra })))
    expect((await at(T + 60_000 + 3_600_000)).kind).toBe('ok')
    expect(await at(T + 60_000 + 3_600_001)).toMatchObject({ kind: 'bad_row', reason: 'bad_envelope' })
    // The same through the schema's path (an envelope the hand check leaves to zod: keys out of order).
    const { v, ...rest } = testEnvelope({ type: 'impression', n: 1, impressionId: 'i1', ts: T, receivedAt: T + 86_400_000 })
    expect(await decode(raw(JSON.stringify({ ...rest, v })))).toMatchObject({ kind: 'bad_row', reason: 'bad_envelope' })
  })
})
