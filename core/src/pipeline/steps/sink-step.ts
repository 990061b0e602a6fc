import { ok } from '../result.js'
import type { Step } from '../step.js'
import type { Scored } from '../types.js'
import type { BatchBuilder } from '../../sinks/batch-builder.js'

/**
 * The last step: hands a billable event to the batch being built. Events that ended earlier
 * (unbilled, bad rows) reach the same builder through the runner's terminal handler, so every
 * outcome lands in the sinks of its batch.
 */
export function createSinkStep<T extends Scored>(builder: () => BatchBuilder): Step<T, T> {
  return function sinkStep(input) {
    builder().add({ kind: 'ok', value: input, lastStep: 'sinkStep' })
    return ok(input)
  }
}
