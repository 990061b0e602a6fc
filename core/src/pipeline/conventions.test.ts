/**
 * Pipeline conventions, as runnable tests so they cannot go stale. Read top to bottom.
 */
import { describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isReasonCode } from '@adc/schemas'
import { createPipeline } from './pipeline.js'
import { badRow, ok, unbilled, type StepResult } from './result.js'
import type { Step } from './step.js'
import { createDecodeStep } from './steps/decode-step.js'
import { createDedupeStep } from './steps/dedupe-step.js'
import { createJoinStage } from './steps/join-step.js'
import { createIvtStep } from './steps/ivt-step.js'
import { createSinkStep } from './steps/sink-step.js'
import { PartitionStore } from '../state/partition-store.js'
import { BatchBuilder } from '../sinks/batch-builder.js'

describe('1. a step is a factory returning a named function', () => {
  it('every step factory of the processor returns a function named after the step', () => {
    const dir = mkdtempSync(join(tmpdir(), 'adc-conv-'))
    const store = PartitionStore.open(dir, 0)
    try {
      const steps: Array<Step<never, unknown>> = [
        createDecodeStep(),
        createDedupeStep({ store }),
        createJoinStage({ store }).step,
        createIvtStep({ store }),
        createSinkStep(() => new BatchBuilder('t', 0, 0, 0)),
      ]
      expect(steps.map((s) => s.name)).toEqual(['decodeStep', 'dedupeStep', 'joinStep', 'ivtStep', 'sinkStep'])
    } finally {
      void store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the runner puts the failing step name on a bad row', async () => {
    function createParseStep(): Step<string, number> {
      return async function parseStep(input) {
        const n = Number(input)
        return Number.isNaN(n) ? badRow('bad_envelope', 'not a number', input) : ok(n)
      }
    }
    const out = await createPipeline(createParseStep()).run('x')
    expect(out).toMatchObject({ kind: 'bad_row', step: 'parseStep', payload: 'x', reason: 'bad_envelope' })
  })
})

describe('2. results are values with string kinds, and none discards', () => {
  it('a non-ok result ends the chain; the later steps never see it', async () => {
    const seen: number[] = []
    async function firstStep(n: number): Promise<StepResult<number>> {
      return n > 1 ? unbilled(n, 'duplicate_delivery') : ok(n)
    }
    async function secondStep(n: number): Promise<StepResult<number>> {
      seen.push(n)
      return ok(n * 10)
    }
    const p = createPipeline(firstStep).pipe(secondStep)
    expect(await p.run(1)).toMatchObject({ kind: 'ok', value: 10, lastStep: 'secondStep' })
    expect(await p.run(2)).toMatchObject({ kind: 'unbilled', value: 2, reason: 'duplicate_delivery', lastStep: 'firstStep' })
    expect(seen).toEqual([1])
  })

  it('unbilled and bad_row results carry a registered reason code (the type only accepts those)', () => {
    const results: Array<StepResult<number>> = [unbilled(1, 'orphan_click'), badRow('unknown_version', 'v2', '{}')]
    for (const r of results) if (r.kind !== 'ok') expect(isReasonCode(r.reason)).toBe(true)
  })
})

describe('3. a step answers synchronously unless it has I/O to wait for', () => {
  it('the runner answers synchronously for synchronous steps and with a promise as soon as one step is async', async () => {
    function doubleStep(n: number): StepResult<number> {
      return ok(n * 2)
    }
    async function remoteStep(n: number): Promise<StepResult<number>> {
      return ok(n + 1)
    }
    const sync = createPipeline(doubleStep).pipe(doubleStep).run(1)
    expect(sync).not.toBeInstanceOf(Promise)
    expect(sync).toMatchObject({ kind: 'ok', value: 4, lastStep: 'doubleStep' })
    const mixed = createPipeline(doubleStep).pipe(remoteStep).pipe(doubleStep).run(1)
    expect(mixed).toBeInstanceOf(Promise)
    expect(await mixed).toMatchObject({ kind: 'ok', value: 6, lastStep: 'doubleStep' })
  })
})

describe('4. a throw means infrastructure failed', () => {
  it('propagates out of the pipeline so the whole batch is retried', async () => {
    async function storageStep(): Promise<StepResult<number>> {
      throw new Error('LMDB unavailable')
    }
    await expect(createPipeline(storageStep).run(1)).rejects.toThrow('LMDB unavailable')
  })
})
