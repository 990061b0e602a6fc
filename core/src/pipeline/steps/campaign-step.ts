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
  /**
   * Called before an event is called unbooked, with the tenant config version the edge checked it
   * against (`edge.configVersion`, undefined when the envelope has none): a promise when the tenant
   * view must catch up first (core/src/processor/tenant-sync.ts), after which the campaign is looked
   * up again; a rejection fails the batch, which is retried. @default the verdict is given at once
   */
  settle?: (configVersion: number | undefined) => Promise<void> | undefined
}

/**
 * Only booked campaigns bill, and only for the publishers they are booked with. The edge refuses
 * events for other campaigns, or from other publishers (`unknown_campaign`);
 * one that gets into the log anyway (an older edge, a direct write) is kept and written unbilled
 * with that reason, never counted in a billed total. An event for a campaign this replica's tenant
 * view does not hold yet (booked through another replica a moment ago) waits for the view (`settle`).
 */
export function createCampaignStep<T extends Decoded>({ isBooked, settle }: CampaignDeps): Step<T, T> {
  return function campaignStep(input) {
    const { event, edge } = input.envelope
    if (isBooked(event.campaignId, event.publisherId)) return ok(input)
    const waiting = settle?.(edge.configVersion)
    if (!waiting) return unbilled(input, 'unknown_campaign')
    return waiting.then(() => (isBooked(event.campaignId, event.publisherId) ? ok(input) : unbilled(input, 'unknown_campaign')))
  }
}
