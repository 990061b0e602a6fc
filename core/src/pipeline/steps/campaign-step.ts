import { ok, unbilled } from '../result.js'
import type { Step } from '../step.js'
import type { Decoded } from '../types.js'

export interface CampaignDeps {
  /**
   * Whether a campaign id is booked with the publisher (from the tenant store: booked, and with
   * that publisher when its booking names publishers). Campaigns are never deleted nor their
   * publishers changed, so once booked the answer stays true and a replay gives the same verdict.
   */
  isBooked: (campaignId: string, publisherId: string) => boolean
}

/**
 * Only booked campaigns bill, and only for the publishers they are booked with. The edge refuses
 * events for other campaigns, or from other publishers (`unknown_campaign`);
 * one that gets into the log anyway (an older edge, a direct write) is kept and written unbilled
 * with that reason, never counted in a billed total.
 */
export function createCampaignStep<T extends Decoded>({ isBooked }: CampaignDeps): Step<T, T> {
  return function campaignStep(input) {
    const event = input.envelope.event
    return isBooked(event.campaignId, event.publisherId) ? ok(input) : unbilled(input, 'unknown_campaign')
  }
}
