import { describe, expect, it } from 'vitest'
import { decoded } from '../../testing/records.js'
import { createCampaignStep } from './campaign-step.js'

describe('campaignStep', () => {
  it('passes a booked campaign and keeps any other unbilled as unknown_campaign', () => {
    const step = createCampaignStep({ isBooked: (id) => id === 'cmp_demo_cpm' })
    expect(step(decoded({ type: 'impression', n: 1, campaignId: 'cmp_demo_cpm' }))).toMatchObject({ kind: 'ok' })
    expect(step(decoded({ type: 'impression', n: 2, campaignId: 'cmp_nobody' }))).toMatchObject({ kind: 'unbilled', reason: 'unknown_campaign' })
  })
})
