import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { createEmbeddedLog, rangeAssign } from './embedded-log.js'
import { runLogContract } from '../testing/log.contract.js'
import { LogError, type Batch, type BatchContext } from './log.js'

const dirs: string[] = []
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'adc-embedded-log-'))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const logger = pino({ level: 'silent' })
const newLog = (dir = freshDir()) => createEmbeddedLog({ dir, logger, retryBackoffMs: 50 })

runLogContract({ name: 'embedded', newLog: () => newLog(), settleMs: 10_000 })

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('embedded log', () => {
  it('assigns ranges like Kafka RangeAssignor', () => {
    expect(rangeAssign(4, 1)).toEqual([[0, 1, 2, 3]])
    expect(rangeAssign(4, 2)).toEqual([[0, 1], [2, 3]])
    expect(rangeAssign(5, 2)).toEqual([[0, 1, 2], [3, 4]])
    expect(rangeAssign(2, 3)).toEqual([[0], [1], []])
  })

  it('keeps records, offsets and group commits across a restart', async () => {
    const dir = freshDir()
    const first = await newLog(dir)
    await first.ensureTopic('ad-events', 3)
    const appended = await first.append('ad-events', Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })))
    const got: string[] = []
    const c = await first.consume({
      groupId: 'g',
      topic: 'ad-events',
      onBatch: async (batch, ctx) => {
        for (const r of batch.records) {
          got.push(r.value)
          ctx.resolveOffset(r.offset)
        }
        await ctx.commit()
      },
    })
    await waitFor('30 records', () => got.length === 30)
    await c.stop()
    const ends = await first.endOffsets('ad-events')
    await first.close()

    const second = await newLog(dir)
    expect(await second.partitionCount('ad-events')).toBe(3)
    expect(await second.endOffsets('ad-events')).toEqual(ends)
    expect(await second.committedOffsets('g', 'ad-events')).toEqual(ends)
    // New appends continue the dense offsets where they stopped.
    const more = await second.append('ad-events', [{ key: 'k0', value: 'again' }])
    const p = appended[0]!.partition
    expect(more[0]).toEqual({ partition: p, offset: ends.get(p)! })
    const after: string[] = []
    const c2 = await second.consume({
      groupId: 'g',
      topic: 'ad-events',
      onBatch: async (batch, ctx) => {
        for (const r of batch.records) {
          after.push(r.value)
          ctx.resolveOffset(r.offset)
        }
        await ctx.commit()
      },
    })
    await waitFor('the new record', () => after.length === 1)
    expect(after).toEqual(['again'])
    await c2.stop()
    await second.close()
  })

  it('keeps every acknowledged append when the process is killed with SIGKILL', async () => {
    const dir = freshDir()
    const fixture = fileURLToPath(new URL('../testing/append-and-die.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, '20'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)))
    expect(signal).toBe('SIGKILL')
    const acked = out
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { b: number; results: { partition: number; offset: number }[] })
    expect(acked.length).toBeGreaterThan(0)

    const log = await newLog(dir)
    const byPartition = new Map<number, Map<number, string>>()
    const got: string[] = []
    const c = await log.consume({
      groupId: 'check',
      topic: 'crash',
      onBatch: async (batch, ctx) => {
        for (const r of batch.records) {
          let m = byPartition.get(r.partition)
          if (!m) byPartition.set(r.partition, (m = new Map()))
          m.set(r.offset, r.value)
          got.push(r.value)
          ctx.resolveOffset(r.offset)
        }
      },
    })
    const ends = await log.endOffsets('crash')
    const total = [...ends.values()].reduce((a, b) => a + b, 0)
    await waitFor('all surviving records', () => got.length === total)
    await c.stop()
    for (const { b, results } of acked) {
      results.forEach((r, i) => expect(byPartition.get(r.partition)?.get(r.offset)).toBe(`v${b}-${i}`))
    }
    // Whatever survived is dense per partition: no holes after a crash.
    for (const [p, m] of byPartition) expect([...m.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: ends.get(p)! }, (_, i) => i))
    await log.close()
  })

  it('retention by size deletes the oldest processed records of a log over its bound, never unprocessed ones nor a compacted topic', async () => {
    const dir = freshDir()
    const log = await createEmbeddedLog({ dir, logger, retention: { maxAgeMs: 3_600_000, maxBytes: 256 * 1024, intervalMs: 3_600_000 } })
    await log.ensureTopic('big', 1)
    await log.ensureTopic('truth', 1, { compacted: true })
    const value = 'x'.repeat(4000)
    await log.append('big', Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value })))
    await log.append('truth', Array.from({ length: 50 }, (_, i) => ({ key: `t${i}`, value })))
    expect(await log.compact()).toBe(0) // young, and nothing committed: nothing is known processed
    let done = false
    const c = await log.consume({
      groupId: 'g',
      topic: 'big',
      onBatch: async (batch, ctx) => {
        ctx.resolveOffset(149)
        await ctx.commit()
        done = true
      },
    })
    await waitFor('commit', () => done)
    await c.stop()
    const deleted = await log.compact()
    // About 1 MiB of records over a 256 KiB bound: the oldest processed ones go, up to the commit.
    expect(deleted).toBeGreaterThan(100)
    expect(deleted).toBeLessThanOrEqual(150)
    const left = await log.readRange('big', 0, 0)
    expect(left[0]!.offset).toBe(deleted)
    expect(left.at(-1)!.offset).toBe(199)
    expect(await log.readRange('truth', 0, 0)).toHaveLength(50)
    await log.close()
  })

  it('retention deletes old records only below every group commit, and keeps the last one', async () => {
    const dir = freshDir()
    const log = await createEmbeddedLog({ dir, logger, retention: { maxAgeMs: 0, intervalMs: 3_600_000 } })
    await log.ensureTopic('t', 1)
    await log.append('t', Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: `v${i}` })))
    expect(await log.compact()).toBe(0) // no group has committed: nothing is known processed
    const commitUpTo = async (groupId: string, next: number): Promise<void> => {
      let done = false
      const c = await log.consume({
        groupId,
        topic: 't',
        onBatch: async (batch, ctx) => {
          ctx.resolveOffset(next - 1)
          await ctx.commit()
          done = true
        },
      })
      await waitFor('commit', () => done)
      await c.stop()
    }
    await commitUpTo('slow', 3)
    await commitUpTo('fast', 10)
    await new Promise((r) => setTimeout(r, 5))
    expect(await log.compact()).toBe(3) // offsets 0..2: below the slowest group's commit
    await commitUpTo('slow', 10)
    expect(await log.compact()).toBe(6) // 3..8: offset 9 stays so offsets continue after a restart
    await log.close()

    const reopened = await newLog(dir)
    expect((await reopened.append('t', [{ key: 'k', value: 'v10' }]))[0]!.offset).toBe(10)
    const seen: number[] = []
    const c = await reopened.consume({
      groupId: 'new',
      topic: 't',
      onBatch: async (batch, ctx) => {
        for (const r of batch.records) {
          seen.push(r.offset)
          ctx.resolveOffset(r.offset)
        }
      },
    })
    await waitFor('the kept records', () => seen.length >= 2)
    expect(seen.slice(0, 2)).toEqual([9, 10])
    await c.stop()
    await reopened.close()
  })

  it('gives concurrent appends distinct dense offsets', async () => {
    const log = await newLog()
    await log.ensureTopic('t', 1)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append('t', [{ key: 'k', value: `a${i}` }, { key: 'k', value: `b${i}` }])))
    const offsets = results.flat().map((r) => r.offset).sort((a, b) => a - b)
    expect(offsets).toEqual(Array.from({ length: 40 }, (_, i) => i))
    await log.close()
  })

  it('refuses unknown topics and out-of-range partitions with a LogError', async () => {
    const log = await newLog()
    await expect(log.append('nope', [{ key: 'k', value: 'v' }])).rejects.toMatchObject({ code: 'unknown_topic' })
    await log.ensureTopic('t', 2)
    await expect(log.append('t', [{ key: 'k', value: 'v', partition: 2 }])).rejects.toBeInstanceOf(LogError)
    await log.close()
    await expect(log.append('t', [{ key: 'k', value: 'v' }])).rejects.toMatchObject({ code: 'closed' })
  })

  it('marks an in-flight batch stale when its partition moves, refuses its commit, and revokes after it ends', async () => {
    const log = await newLog()
    await log.ensureTopic('t', 2)
    await log.append('t', [{ key: 'a', value: '1', partition: 1 }])
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const events: string[] = []
    let ctxSeen: BatchContext | undefined
    const a = await log.consume({
      groupId: 'g',
      topic: 't',
      onRevoke: async (ps) => {
        events.push(`revoke ${ps.join(',')}`)
      },
      onBatch: async (batch: Batch, ctx) => {
        ctxSeen = ctx
        events.push(`batch ${batch.partition}`)
        await gate
        for (const r of batch.records) ctx.resolveOffset(r.offset)
        await ctx.commit().catch((err: unknown) => events.push(`commit ${(err as LogError).code}`))
        events.push('batch end')
      },
    })
    await waitFor('batch in flight', () => ctxSeen !== undefined)
    expect(ctxSeen!.isStale()).toBe(false)
    const bAssigned: number[][] = []
    const b = await log.consume({ groupId: 'g', topic: 't', onAssign: async (ps) => void bAssigned.push(ps), onBatch: async () => {} })
    expect(ctxSeen!.isStale()).toBe(true)
    // B cannot take partition 1 while A's batch on it is in flight.
    await new Promise((r) => setTimeout(r, 50))
    expect(bAssigned).toEqual([])
    release()
    await waitFor('B assigned', () => bAssigned.length === 1)
    expect(bAssigned).toEqual([[1]])
    expect(events).toEqual(['batch 1', 'commit stale_partition', 'batch end', 'revoke 1'])
    expect(a.assignment()).toEqual([0])
    expect((await log.committedOffsets('g', 't')).size).toBe(0)
    await Promise.all([a.stop(), b.stop()])
    await log.close()
  })
})
