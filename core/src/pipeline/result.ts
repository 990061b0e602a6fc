import type { ReasonCode } from '@adc/schemas'

/**
 * What a step returns for one input. String kinds, so logs and tests read plainly. There is no kind
 * that discards: billing requires that nothing accepted vanishes.
 *
 * - `ok`: carry on with the next step.
 * - `unbilled`: kept and written with `reason`, never billed (duplicate, invalid traffic, orphan click).
 *   Skips the remaining steps.
 * - `bad_row`: the input cannot be processed (schema violation); kept as a bad row with the original
 *   payload, the reason, the step that refused it and details, enough to fix and replay.
 *
 * Expected outcomes are results. A throw means infrastructure failed: the batch is retried.
 */
export type StepResult<T> = OkResult<T> | UnbilledResult<T> | BadRowResult

export interface OkResult<T> {
  kind: 'ok'
  value: T
}

export interface UnbilledResult<T> {
  kind: 'unbilled'
  value: T
  reason: ReasonCode
}

export interface BadRowResult {
  kind: 'bad_row'
  reason: ReasonCode
  /** Human-readable details of what was wrong (e.g. zod issues). */
  error: string
  /** The original payload, byte for byte as read from the log. */
  payload: string
  /** Name of the step that refused the input; set by the runner when the step leaves it empty. */
  step: string
}

export function ok<T>(value: T): OkResult<T> {
  return { kind: 'ok', value }
}

export function unbilled<T>(value: T, reason: ReasonCode): UnbilledResult<T> {
  return { kind: 'unbilled', value, reason }
}

export function badRow(reason: ReasonCode, error: string, payload: string, step = ''): BadRowResult {
  return { kind: 'bad_row', reason, error, payload, step }
}

export function isOk<T>(result: StepResult<T>): result is OkResult<T> {
  return result.kind === 'ok'
}
