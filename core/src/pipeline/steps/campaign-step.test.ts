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

  it('asks to settle only before calling a campaign unbooked, with the stamped version, and looks again after', async () => {
    const booked = new Set(['cmp_demo_cpm'])
    const asked: Array<number | undefined> = []
    const step = createCampaignStep({
      isBooked: (id) => booked.has(id),
      settle: (v) => {
        asked.push(v)
        return v === 7 ? Promise.resolve().then(() => void booked.add('cmp_late')) : undefined
      },
    })
    const stamped = (n: number, campaignId: string, configVersion?: number) => {
      const d = decoded({ type: 'impression', n, campaignId })
      if (configVersion !== undefined) d.envelope.edge.configVersion = configVersion
      return d
    }
    expect(step(stamped(1, 'cmp_demo_cpm', 3))).toMatchObject({ kind: 'ok' })
    expect(asked).toEqual([])
    expect(step(stamped(2, 'cmp_nobody', 3))).toMatchObject({ kind: 'unbilled', reason: 'unknown_campaign' })
    expect(await step(stamped(3, 'cmp_late', 7))).toMatchObject({ kind: 'ok' })
    expect(step(stamped(4, 'cmp_other'))).toMatchObject({ kind: 'unbilled', reason: 'unknown_campaign' })
    expect(asked).toEqual([3, 7, undefined])
  })

  it('fails (no verdict) when settling fails', async () => {
    const step = createCampaignStep({ isBooked: () => false, settle: () => Promise.reject(new Error('view behind')) })
    await expect(step(decoded({ type: 'impression', n: 1, campaignId: 'cmp_x' }))).rejects.toThrow('view behind')
  })
})
