import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { createEmbeddedLog } from './embedded-log.js'
import type { Consumer } from './log.js'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

type Action =
  | { kind: 'append'; n: number }
  | { kind: 'join' }
  | { kind: 'stop'; member: number }
  | { kind: 'failNext'; member: number }
  | { kind: 'pause'; ms: number }

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('join' as const) }),
  fc.record({ kind: fc.constant('stop' as const), member: fc.nat(5) }),
  fc.record({ kind: fc.constant('failNext' as const), member: fc.nat(5) }),
  fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 15 }) }),
)

/**
 * Group membership under random joins, stops, failing batches and appends. Invariants: a partition
 * is never in two members' onBatch at once, a member only gets batches of partitions it was given
 * (onAssign) and not yet revoked, and once things settle every appended record is committed.
 */
describe('embedded log group model', () => {
  it('keeps partitions exclusive and loses nothing under random membership changes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 3, maxLength: 25 }), async (actions) => {
        const dir = mkdtempSync(join(tmpdir(), 'adc-log-model-'))
        dirs.push(dir)
        const log = await createEmbeddedLog({ dir, logger: pino({ level: 'silent' }), retryBackoffMs: 5 })
        await log.ensureTopic('t', 4)
        const inFlight = new Set<number>()
        const violations: string[] = []
        const members: { consumer: Consumer; owned: Set<number>; failNext: boolean; stopped: boolean }[] = []
        let appended = 0

        const joinGroup = async (): Promise<void> => {
          const m = { consumer: undefined as unknown as Consumer, owned: new Set<number>(), failNext: false, stopped: false }
          const id = members.length
          members.push(m)
          m.consumer = await log.consume({
            groupId: 'g',
            topic: 't',
            maxBatchRecords: 7,
            onAssign: async (ps) => {
              for (const p of ps) m.owned.add(p)
            },
            onRevoke: async (ps) => {
              for (const p of ps) m.owned.delete(p)
            },
            onBatch: async (batch, ctx) => {
              if (!m.owned.has(batch.partition)) violations.push(`member ${id} got partition ${batch.partition} it does not own`)
              if (inFlight.has(batch.partition)) violations.push(`partition ${batch.partition} delivered twice at once`)
              inFlight.add(batch.partition)
              try {
                await new Promise((r) => setTimeout(r, 1))
                if (m.failNext) {
                  m.failNext = false
                  throw new Error('injected')
                }
                for (const r of batch.records) ctx.resolveOffset(r.offset)
                if (!ctx.isStale()) await ctx.commit()
              } finally {
                inFlight.delete(batch.partition)
              }
            },
          })
        }

        for (const a of actions) {
          if (a.kind === 'append') {
            await log.append('t', Array.from({ length: a.n }, (_, i) => ({ key: `k${appended + i}`, value: 'v' })))
            appended += a.n
          } else if (a.kind === 'join') {
            if (members.filter((m) => !m.stopped).length < 4) await joinGroup()
          } else if (a.kind === 'stop') {
            const m = members[a.member]
            if (m && !m.stopped) {
              m.stopped = true
              await m.consumer.stop()
            }
          } else if (a.kind === 'failNext') {
            const m = members[a.member]
            if (m) m.failNext = true
          } else {
            await new Promise((r) => setTimeout(r, a.ms))
          }
        }
        if (!members.some((m) => !m.stopped)) await joinGroup()

        const ends = await log.endOffsets('t')
        const live = members.filter((m) => !m.stopped)
        const owned = (): number[] => live.flatMap((m) => m.consumer.assignment()).sort()
        const deadline = Date.now() + 5000
        for (;;) {
          const committed = await log.committedOffsets('g', 't')
          const behind = [...ends].filter(([p, end]) => end > 0 && committed.get(p) !== end)
          // Hand-offs settle within a few event-loop turns: live members then cover every partition.
          if (behind.length === 0 && owned().length === 4) break
          if (Date.now() > deadline) throw new Error(`not settled: behind ${JSON.stringify(behind)}, owned ${JSON.stringify(owned())}`)
          await new Promise((r) => setTimeout(r, 5))
        }
        const finalOwned = owned()
        await log.close()
        expect(violations).toEqual([])
        expect([...ends.values()].reduce((a, b) => a + b, 0)).toBe(appended)
        // Live members' assignments cover the topic exactly once.
        expect(finalOwned).toEqual([0, 1, 2, 3])
      }),
      { numRuns: 15 },
    )
  })
})
