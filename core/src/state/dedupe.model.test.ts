import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { envelopeSchema } from '@adc/schemas'
import { PartitionStore } from './partition-store.js'
import { createDedupeStep } from '../pipeline/steps/dedupe-step.js'
import type { Decoded } from '../pipeline/types.js'
import { testEnvelope } from '../testing/events.js'

interface Ev {
  type: 'impression' | 'click'
  eventNo: number
  imp: number
}

const T = Date.UTC(2026, 10, 23, 8, 0, 0)
const evArb = fc.record({ type: fc.constantFrom('impression' as const, 'click' as const), eventNo: fc.integer({ min: 0, max: 12 }), imp: fc.integer({ min: 0, max: 4 }) })

function decodedAt(e: Ev, offset: number): Decoded {
  const env = envelopeSchema.parse(testEnvelope({ type: e.type, n: e.eventNo, impressionId: `imp_${e.imp}`, ts: T + offset }))
  return { ref: { topic: 'ad-events', partition: 0, offset }, payload: '', appendedAt: env.receivedAt, envelope: env }
}

/** The reference: what the verdicts must be, computed without any store. */
function model(evs: Ev[]): string[] {
  const delivered = new Set<string>()
  const impressions = new Set<number>()
  const clicks = new Set<number>()
  return evs.map((e) => {
    const dk = `${e.type}/${e.eventNo}`
    if (delivered.has(dk)) return 'duplicate_delivery'
    delivered.add(dk)
    if (e.type === 'impression') {
      if (impressions.has(e.imp)) return 'duplicate_impression'
      impressions.add(e.imp)
    } else {
      if (clicks.has(e.imp)) return 'repeat_click'
      clicks.add(e.imp)
    }
    return 'ok'
  })
}

const verdict = (r: { kind: string; reason?: string }): string => (r.kind === 'ok' ? 'ok' : r.reason!)

describe('dedupe store (model)', () => {
  it('gives the reference verdicts through batch cuts and crashes, and replaying any offset range changes no verdict and no total', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(evArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
        fc.tuple(fc.nat(), fc.nat()),
        async (evs, cuts, crashes, [a, b]) => {
          const dir = mkdtempSync(join(tmpdir(), 'adc-dedupe-model-'))
          let store = PartitionStore.open(dir, 0)
          try {
            const records = evs.map((e, i) => decodedAt(e, i))
            const verdicts: string[] = []
            let pos = 0
            let batchNo = 0
            while (pos < records.length) {
              const size = cuts[batchNo % cuts.length]!
              const batch = records.slice(pos, pos + size)
              const crash = crashes[batchNo % crashes.length]!
              let dedupe = createDedupeStep({ store })
              const first: string[] = []
              for (const r of batch) first.push(verdict(await dedupe(r)))
              if (crash) {
                // The sink write failed or the process died before the state commit: the batch's
                // writes are gone, and after a restart it is computed again from the same state.
                store.discard()
                await store.close()
                store = PartitionStore.open(dir, 0)
                dedupe = createDedupeStep({ store })
                const again: string[] = []
                for (const r of batch) again.push(verdict(await dedupe(r)))
                expect(again).toEqual(first)
              }
              await store.commit(batch[batch.length - 1]!.ref.offset)
              verdicts.push(...first)
              pos += size
              batchNo++
            }
            expect(verdicts).toEqual(model(evs))

            // Replay any range of already committed offsets (a reprocess, or a rewound group).
            const lo = a % records.length
            const hi = lo + (b % (records.length - lo))
            const dedupe = createDedupeStep({ store })
            const replayed: string[] = []
            for (const r of records.slice(lo, hi + 1)) replayed.push(verdict(await dedupe(r)))
            store.discard()
            expect(replayed).toEqual(verdicts.slice(lo, hi + 1))
            const totals = (vs: string[]) => vs.reduce<Record<string, number>>((t, v) => ({ ...t, [v]: (t[v] ?? 0) + 1 }), {})
            expect(totals(replayed)).toEqual(totals(verdicts.slice(lo, hi + 1)))
          } finally {
            await store.close()
            rmSync(dir, { recursive: true, force: true })
          }
        },
      ),
      { numRuns: 60 },
    )
  })
})
