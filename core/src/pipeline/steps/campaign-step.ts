import { ok, unbilled } from '../result.js'
import type { Step } from '../step.js'
import type { Decoded } from '../types.js'

export interface CampaignDeps {
  /**
   * Whether a campaign id is booked (from the tenant store). Campaigns are never deleted, so once
   * booked the answer stays true and a replay gives the same verdict.
   */
  isBooked: (campaignId: string) => boolean
}

/**
 * Only booked campaigns bill. The edge refuses events for other campaigns (`unknown_campaign`);
 * one that gets into the log anyway (an older edge, a direct write) is kept and written unbilled
 * with that reason, never counted in a billed total.
 */
export function createCampaignStep<T extends Decoded>({ isBooked }: CampaignDeps): Step<T, T> {
  return function campaignStep(input) {
    return isBooked(input.envelope.event.campaignId) ? ok(input) : unbilled(input, 'unknown_campaign')
  }
}
