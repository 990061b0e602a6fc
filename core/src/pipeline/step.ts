import type { StepResult } from './result.js'

/**
 * A pipeline step: takes one input, returns a result. Built by a factory `createXStep(deps)` that
 * returns a *named* function (`return async function xStep(input) {…}`): the runner records that
 * name in bad rows, metrics and logs. The input type says what the step reads, the output what it
 * adds: `Step<T, T & Joined>` with `T extends Deduped`. A step that needs no I/O may answer
 * synchronously (the runner awaits only promises: most processor steps read LMDB synchronously,
 * and an await per step per event was a measurable share of the pipeline's CPU).
 */
export type Step<In, Out> = (input: In) => StepResult<Out> | Promise<StepResult<Out>>

/** The name a step reports (its function name), or `anonymous` when a factory forgot to name it. */
export function stepName(step: Step<never, unknown>): string {
  return step.name || 'anonymous'
}
