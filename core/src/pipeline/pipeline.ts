import type { StepResult } from './result.js'
import { stepName, type Step } from './step.js'

/** A result together with the name of the step that produced it (the last step run). */
export type PipelineOutcome<T> = StepResult<T> & { lastStep: string }

export interface Pipeline<In, Out> {
  /** Runs the input through every step until one returns a non-ok result. */
  run(input: In): Promise<PipelineOutcome<Out>>
  /** Adds a step at the end, giving a new pipeline (the builder is immutable). */
  pipe<Next>(step: Step<Out, Next>): Pipeline<In, Next>
  readonly stepNames: readonly string[]
}

type AnyStep = Step<any, any> // eslint-disable-line @typescript-eslint/no-explicit-any -- erased at the chain boundary only

/**
 * Builds a chain of steps: `createPipeline(decodeStep).pipe(dedupeStep).pipe(joinStep)`.
 * A non-ok result ends the chain; a `bad_row` without a step name gets the failing step's name.
 * A throw propagates: infrastructure failed, so the caller retries the whole batch.
 */
export function createPipeline<In, Out>(first: Step<In, Out>): Pipeline<In, Out> {
  return build<In, Out>([first])
}

function build<In, Out>(steps: AnyStep[]): Pipeline<In, Out> {
  const names = steps.map((s) => stepName(s))
  return {
    stepNames: names,
    pipe<Next>(step: Step<Out, Next>): Pipeline<In, Next> {
      return build<In, Next>([...steps, step])
    },
    async run(input: In): Promise<PipelineOutcome<Out>> {
      let value: unknown = input
      let result: StepResult<unknown> | undefined
      for (let i = 0; i < steps.length; i++) {
        result = await steps[i]!(value)
        if (result.kind !== 'ok') {
          if (result.kind === 'bad_row' && !result.step) result = { ...result, step: names[i]! }
          return { ...(result as StepResult<Out>), lastStep: names[i]! }
        }
        value = result.value
      }
      return { ...(result as StepResult<Out>), lastStep: names[names.length - 1]! }
    },
  }
}
