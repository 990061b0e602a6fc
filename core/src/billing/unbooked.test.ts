import { describe, expect, it } from 'vitest'
import { insertRows, rawEvent } from '../testing/api.js'
import { useBillingEnv } from '../testing/billing-env.js'

/**
 * An event the stream kept as `unknown_campaign` (its campaign was not booked when the processor
 * read it: injected past the edge, or booked a moment later) stays out of the bill when the campaign
 * is booked before the close, and is not IVT either: the close must not show it as invalid traffic
 * removed from the advertiser's campaign.
 */
const DAY = '2026-11-12'
const X = Date.parse(`${DAY}T00:00:00Z`)
const H = 3_600_000
const env = useBillingEnv({ tempPrefix: 'adc-unbooked-' })

describe('events kept as unknown_campaign, the campaign booked afterwards', () => {
  it('closes the day without billing them and without counting them as IVT', async () => {
    await insertRows(env.ch.client, 'adc.events_raw', [
      // As the processor wrote them while cmp_later was not booked (processor.test.ts).
      rawEvent({ key: 'u1', imp: 'impu1', campaign: 'cmp_later', ts: X + 1 * H, reason: 'unknown_campaign', offset: 1 }),
      rawEvent({ key: 'u2', imp: 'impu2', campaign: 'cmp_later', ts: X + 2 * H, reason: 'unknown_campaign', offset: 2 }),
      rawEvent({ key: 'u3', type: 'click', imp: 'impu2', campaign: 'cmp_later', ts: X + 2 * H + 5000, reason: 'unknown_campaign', offset: 3 }),
      rawEvent({ key: 'u4', imp: 'impu4', campaign: 'cmp_later', publisher: 'pub_other', ts: X + 3 * H, reason: 'unknown_campaign', offset: 5 }),
      // After the booking: billed.
      rawEvent({ key: 'b1', imp: 'impb1', campaign: 'cmp_later', ts: X + 5 * H, offset: 4 }),
    ])
    await env.tenants.createCampaign({ id: 'cmp_later', advertiserId: 'adv_demo', pricing: { model: 'cpm', priceMicros: 2_000_000 } })
    const job = await env.billing.submitBilling(DAY, 'test')
    await env.billing.idle()
    expect(env.billing.get(job.id)).toMatchObject({ status: 'done' })
    const lines = await env.billing.snapshots.lines(DAY, env.billing.get(job.id)!.versions[DAY]!)
    // Only the booked campaign's line: no empty line for the unknown events alone either.
    expect(lines.map((l) => ({ campaignId: l.campaignId, impressions: l.impressions, clicks: l.clicks, ivtImpressions: l.ivtImpressions, ivtClicks: l.ivtClicks, ivtByReason: l.ivtByReason, spendMicros: l.spendMicros }))).toEqual([
      { campaignId: 'cmp_later', impressions: 1, clicks: 0, ivtImpressions: 0, ivtClicks: 0, ivtByReason: {}, spendMicros: 2000 },
    ])
  })
})
