import { ok, unbilled } from '../result.js'
import type { Step } from '../step.js'
import type { Joined, Scored } from '../types.js'
import type { PartitionStore } from '../../state/partition-store.js'
import { DEFAULT_LIMITS, IVT_MODEL_VERSION, quarantines, scoreEnvelope, type BurstLimits } from '../../ivt/rules.js'

export interface IvtDeps {
  store: PartitionStore
  limits?: BurstLimits
  modelVersion?: string
}

/**
 * Scores each event 0..1 with reason codes and the model version: GIVT per event (bots, non-browser
 * agents, missing agent on web, datacenter ranges, prefetch) and activity rules (fast click, bursts
 * per IP prefix and user key per minute, counted in the partition store so a replay counts the same;
 * each event counts once, when it arrives: a click that waits for its impression, or is orphaned at
 * once, is counted by the join step).
 * Above 0.8 the event is quarantined: `unbilled` with its strongest reason.
 */
export function createIvtStep<T extends Joined>({ store, limits = DEFAULT_LIMITS, modelVersion = IVT_MODEL_VERSION }: IvtDeps): Step<T, T & Scored> {
  const bursts = store.bursts
  return function ivtStep(input) {
    const env = input.envelope
    // A click that waited for its impression was counted when it arrived (join-step.ts): scored with
    // those counts. A correction from before clicks kept them re-scores a click counted once: read
    // the counters, do not count it again.
    const arrived = input.join.bursts
    const count = !input.join.correction
    const minute = Math.floor(env.receivedAt / 60_000)
    const ipPrefixPerMinute = arrived ? arrived.ip : env.client.ipPrefix ? bursts.count('ip', env.client.ipPrefix, minute, count) : 0
    const userKeyPerMinute = arrived ? arrived.uk : env.event.userKey ? bursts.count('uk', env.event.userKey, minute, count) : 0
    const { score, reasons } = scoreEnvelope(env, { impressionTs: input.join.impressionTs, ipPrefixPerMinute, userKeyPerMinute }, limits)
    const quarantined = quarantines(score)
    const value = Object.assign(input, { ivt: { score, reasons, modelVersion, quarantined } })
    return quarantined ? unbilled(value, reasons[0]!) : ok(value)
  }
}
