import { DEFAULT_LIMITS, IVT_MODEL_VERSION, QUARANTINE_ABOVE, scoreEnvelope } from '../rules.js'
import type { Envelope } from '@adc/schemas'
import type { IvtModel } from './model.js'

/** The stream's model: the rules of ivt/rules.ts with their default thresholds. */
export const ivt2026111: IvtModel = {
  version: IVT_MODEL_VERSION,
  description: 'GIVT agent, datacenter and prefetch rules; fast click under 1 s; bursts over 600 per IP prefix or 120 per user key a minute',
  limits: DEFAULT_LIMITS,
  quarantineAbove: QUARANTINE_ABOVE,
  score: (ev, facts) => scoreEnvelope(ev as Envelope, facts, DEFAULT_LIMITS),
}
