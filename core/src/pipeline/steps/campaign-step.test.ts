import { describe, expect, it } from 'vitest'
import { decoded } from '../../testing/records.js'
import { createCampaignStep } from './campaign-step.js'
import { bookedWith, type Campaign } from '../../tenants/tenant-store.js'

describe('campaignStep', () => {
  it('passes a booked campaign and keeps any other unbilled as unknown_campaign', () => {
    const step = createCampaignStep({ isBooked: (id) => id === 'cmp_demo_cpm' })
    expect(step(decoded({ type: 'impression', n: 1, campaignId: 'cmp_demo_cpm' }))).toMatchObject({ kind: 'ok' })
    expect(step(decoded({ type: 'impression', n: 2, campaignId: 'cmp_nobody' }))).toMatchObject({ kind: 'unbilled', reason: 'unknown_campaign' })
  })

  it("keeps a publisher's events for a campaign booked with other publishers only unbilled as unknown_campaign", () => {
    const campaigns = new Map<string, Campaign>([
      ['cmp_any', { id: 'cmp_any', advertiserId: 'adv', name: 'any', pricing: { model: 'cpm', priceMicros: 1 }, createdAt: 0 }],
      ['cmp_only', { id: 'cmp_only', advertiserId: 'adv', name: 'only', pricing: { model: 'cpm', priceMicros: 1 }, publisherIds: ['pub_a'], createdAt: 0 }],
    ])
    const step = createCampaignStep({ isBooked: (id, publisherId) => bookedWith(campaigns.get(id), publisherId) })
    const ev = (n: number, campaignId: string, publisherId: string) => step(decoded({ type: 'impression', n, campaignId, publisherId }))
    expect(ev(1, 'cmp_only', 'pub_a')).toMatchObject({ kind: 'ok' })
    expect(ev(2, 'cmp_only', 'pub_b')).toMatchObject({ kind: 'unbilled', reason: 'unknown_campaign' })
    expect(ev(3, 'cmp_any', 'pub_b')).toMatchObject({ kind: 'ok' })
    expect(ev(4, 'cmp_none', 'pub_a')).toMatchObject({ kind: 'unbilled', reason: 'unknown_campaign' })
  })
})
