import type { Envelope } from '@adc/schemas'
import type { ActivityFacts, BurstLimits } from '../rules.js'

/** What an IVT model reads of an event: the envelope fields the rules look at. */
export type ScoredFields = {
  type: Envelope['type']
  event: Pick<Envelope['event'], 'ts' | 'channel' | 'consent' | 'userKey'>
  client: Pick<Envelope['client'], 'ua' | 'ipPrefix' | 'uaHash'>
  edge: Pick<Envelope['edge'], 'prefetch'>
}

/**
 * A versioned IVT model: the rules with their thresholds. Every decision records the version that
 * made it; the stream runs CURRENT_IVT_MODEL, a reprocess runs any registered version over stored
 * raw events (billing/reprocess.ts).
 */
export interface IvtModel {
  version: string
  description: string
  limits: BurstLimits
  /** Above this score an event is quarantined: kept, not billed. */
  quarantineAbove: number
  score(ev: ScoredFields, facts: ActivityFacts): { score: number; reasons: string[] }
}
