import type { StepResult } from './result.js'
import { stepName, type Step } from './step.js'

/** A result together with the name of the step that produced it (the last step run). */
export type PipelineOutcome<T> = StepResult<T> & { lastStep: string }

export interface Pipeline<In, Out> {
  /**
   * Runs the input through every step until one returns a non-ok result. Answers synchronously when
   * every step did (the processor's steps read LMDB synchronously), otherwise with a promise. A step
   * that throws (synchronously or by rejecting) makes `run` throw or reject: the batch is retried.
   */
  run(input: In): PipelineOutcome<Out> | Promise<PipelineOutcome<Out>>
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

  const finish = (result: StepResult<unknown>, i: number): PipelineOutcome<Out> => {
    if (result.kind === 'bad_row' && !result.step) result.step = names[i]!
    // Step results are fresh objects: annotate in place rather than copy per event.
    const outcome = result as PipelineOutcome<Out>
    outcome.lastStep = names[i]!
    return outcome
  }

  function runFrom(start: number, input: unknown): PipelineOutcome<Out> | Promise<PipelineOutcome<Out>> {
    let value = input
    for (let i = start; i < steps.length; i++) {
      const r = steps[i]!(value) as StepResult<unknown> | Promise<StepResult<unknown>>
      if (r instanceof Promise) return r.then((res) => (res.kind !== 'ok' || i === steps.length - 1 ? finish(res, i) : runFrom(i + 1, res.value)))
      if (r.kind !== 'ok' || i === steps.length - 1) return finish(r, i)
      value = r.value
    }
    throw new RangeError('a pipeline has at least one step')
  }
  return {
    stepNames: names,
    pipe<Next>(step: Step<Out, Next>): Pipeline<In, Next> {
      return build<In, Next>([...steps, step])
    },
    run(input: In): PipelineOutcome<Out> | Promise<PipelineOutcome<Out>> {
      return runFrom(0, input)
    },
  }
}
