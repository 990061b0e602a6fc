/**
 * Test support for pipeline steps: partition stores that are removed after each test, and decoded
 * records as the decode step hands them on.
 * Imported by tests and benchmarks only.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'vitest'
import { envelopeSchema, type Envelope, EVENTS_TOPIC } from '@adc/schemas'
import { PartitionStore } from '../state/partition-store.js'
import { testEnvelope, type TestEventInput } from './events.js'
import type { Decoded } from '../pipeline/types.js'

/** Test support for the step tests: real LMDB partition stores in temp dirs, closed after each test. */
export function useStores(): () => PartitionStore {
  const dirs: string[] = []
  const stores: PartitionStore[] = []
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close()
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'adc-steps-'))
    dirs.push(dir)
    const s = PartitionStore.open(dir, 0)
    stores.push(s)
    return s
  }
}

export const T = Date.UTC(2026, 10, 23, 9, 0, 0)
let offset = 0

/** A decoded event at the next offset (or `at`). */
export function decoded(i: Partial<TestEventInput> & Pick<TestEventInput, 'type' | 'n'>, at = offset++): Decoded {
  const env: Envelope = envelopeSchema.parse(testEnvelope({ impressionId: `imp_${i.n}`, ts: T, ...i }))
  return { ref: { topic: EVENTS_TOPIC, partition: 0, offset: at }, payload: JSON.stringify(env), appendedAt: env.receivedAt, envelope: env }
}
