import type { Envelope } from '@adc/schemas'
import { QUARANTINE_ABOVE, scoreEnvelope, type BurstLimits } from '../rules.js'
import type { IvtModel } from './model.js'

const LIMITS: BurstLimits = { ipPrefixPerMinute: 100, userKeyPerMinute: 30, fastClickMs: 3000 }

/**
 * Stricter thresholds, same rules: a click within 3 s of its impression is not a person, and more
 * than 100 events per IP prefix (30 per user key) in a minute is a burst. Candidate for promotion.
 */
export const ivt2026121: IvtModel = {
  version: 'ivt-2026.12.1',
  description: 'as ivt-2026.11.1 with fast click under 3 s and bursts over 100 per IP prefix or 30 per user key a minute',
  limits: LIMITS,
  quarantineAbove: QUARANTINE_ABOVE,
  score: (ev, facts) => scoreEnvelope(ev as Envelope, facts, LIMITS),
}
