/**
 * The Log port's contract suite: every adapter (embedded LMDB log, Kafka) runs the same tests.
 * Imported by tests and benchmarks only.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { partitionFor } from '@adc/schemas'
import type { Batch, BatchContext, ConsumeOptions, Consumer, Log, LogRecord } from '../log/log.js'

export interface LogContractOptions {
  name: string
  /** A fresh, connected log; closed after the suite. */
  newLog(): Promise<Log>
  /** How long to wait for deliveries and rebalances. @default 30_000 */
  settleMs?: number
}

const suffix = (): string => randomBytes(4).toString('hex')

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

interface Collector {
  consumer: Consumer
  records: LogRecord[]
  batches: Batch[]
  assigned: number[][]
  revoked: number[][]
}

/** Consumes into arrays; resolves every record, and commits after each batch when `commit` is set. */
async function collect(
  log: Log,
  opts: Pick<ConsumeOptions, 'groupId' | 'topic' | 'fromBeginning' | 'maxBatchRecords'> & {
    commit?: boolean
    onBatch?: (batch: Batch, ctx: BatchContext) => Promise<void>
  },
): Promise<Collector> {
  const c: Omit<Collector, 'consumer'> = { records: [], batches: [], assigned: [], revoked: [] }
  const consumer = await log.consume({
    groupId: opts.groupId,
    topic: opts.topic,
    fromBeginning: opts.fromBeginning,
    maxBatchRecords: opts.maxBatchRecords,
    onAssign: async (ps) => {
      c.assigned.push([...ps])
    },
    onRevoke: async (ps) => {
      c.revoked.push([...ps])
    },
    onBatch: async (batch, ctx) => {
      if (opts.onBatch) return opts.onBatch(batch, ctx)
      c.batches.push(batch)
      for (const r of batch.records) {
        c.records.push(r)
        ctx.resolveOffset(r.offset)
      }
      if (opts.commit !== false) await ctx.commit()
    },
  })
  return { consumer, ...c }
}

function keysFor(n: number, tag: string): string[] {
  return Array.from({ length: n }, (_, i) => `imp-${tag}-${i}`)
}

/**
 * The behaviour every `Log` adapter must have. Called from each adapter's test file, e.g.
 * `runLogContract({ name: 'embedded', newLog: () => createEmbeddedLog({ dir }) })`.
 */
export function runLogContract({ name, newLog, settleMs = 30_000 }: LogContractOptions): void {
  describe(`Log contract: ${name}`, () => {
    let log: Log
    const open: Consumer[] = []
    const track = <T extends { consumer: Consumer }>(c: T): T => {
      open.push(c.consumer)
      return c
    }

    beforeAll(async () => {
      log = await newLog()
    })
    afterAll(async () => {
      await Promise.all(open.map((c) => c.stop()))
      await log?.close()
    })

    async function freshTopic(partitions: number): Promise<string> {
      const topic = `contract-${suffix()}`
      await log.ensureTopic(topic, partitions)
      return topic
    }

    it('creates topics idempotently and reports their partition count', async () => {
      const topic = await freshTopic(3)
      await log.ensureTopic(topic, 3)
      expect(await log.partitionCount(topic)).toBe(3)
      const ends = await log.endOffsets(topic)
      expect([...ends.entries()].sort()).toEqual([
        [0, 0],
        [1, 0],
        [2, 0],
      ])
    })

    it('refuses appends to a topic that does not exist with unknown_topic', async () => {
      const topic = `contract-missing-${suffix()}`
      await expect(log.append(topic, [{ key: 'k', value: 'v' }])).rejects.toMatchObject({ name: 'LogError', code: 'unknown_topic' })
      await expect(log.partitionCount(topic)).rejects.toMatchObject({ code: 'unknown_topic' })
    })

    it('puts each key in partitionFor(key, n) and gives dense offsets from 0 per partition, in input order', async () => {
      const topic = await freshTopic(4)
      const keys = keysFor(60, 'p')
      const results = await log.append(topic, keys.map((key, i) => ({ key, value: `v${i}` })))
      expect(results).toHaveLength(keys.length)
      const nextPerPartition = new Map<number, number>()
      results.forEach((r, i) => {
        expect(r.partition).toBe(partitionFor(keys[i]!, 4))
        // Kafka offsets only promise "greater than"; a fresh non-transactional topic is dense.
        expect(r.offset).toBe(nextPerPartition.get(r.partition) ?? 0)
        nextPerPartition.set(r.partition, r.offset + 1)
      })
      const ends = await log.endOffsets(topic)
      for (const [p, next] of nextPerPartition) expect(ends.get(p)).toBe(next)
      const explicit = await log.append(topic, [{ key: 'any', value: 'x', partition: 2 }])
      expect(explicit[0]!.partition).toBe(2)
    })

    it('delivers every record once, in append order within each partition, with key, value and timestamp', async () => {
      const topic = await freshTopic(3)
      const keys = keysFor(300, 'o')
      const before = Date.now()
      // Several appends, so order holds across calls as well as within one.
      for (let i = 0; i < keys.length; i += 50) {
        await log.append(topic, keys.slice(i, i + 50).map((key, j) => ({ key, value: JSON.stringify({ n: i + j }) })))
      }
      const c = track(await collect(log, { groupId: `g-${suffix()}`, topic, maxBatchRecords: 40 }))
      await waitFor('300 records', () => c.records.length >= keys.length, settleMs)
      expect(c.records).toHaveLength(keys.length)
      for (const b of c.batches) {
        expect(b.records.length).toBeLessThanOrEqual(40)
        expect(b.records.every((r) => r.partition === b.partition && r.topic === topic)).toBe(true)
        expect(b.highWatermark).toBeGreaterThan(b.records.at(-1)!.offset)
      }
      for (let p = 0; p < 3; p++) {
        const inP = c.records.filter((r) => r.partition === p)
        const ns = inP.map((r) => (JSON.parse(r.value) as { n: number }).n)
        expect(ns).toEqual([...ns].sort((a, b) => a - b))
        for (let i = 1; i < inP.length; i++) expect(inP[i]!.offset).toBeGreaterThan(inP[i - 1]!.offset)
        for (const r of inP) expect(partitionFor(r.key, 3)).toBe(p)
      }
      const first = c.records.find((r) => r.key === keys[0])!
      expect(JSON.parse(first.value)).toEqual({ n: 0 })
      expect(first.timestamp).toBeGreaterThanOrEqual(before - 1000)
      expect(first.timestamp).toBeLessThanOrEqual(Date.now() + 1000)
      await c.consumer.stop()
    })

    it('wakes a waiting consumer when records are appended later', async () => {
      const topic = await freshTopic(2)
      const c = track(await collect(log, { groupId: `g-${suffix()}`, topic }))
      await waitFor('assignment', () => c.consumer.assignment().length === 2, settleMs)
      const t0 = Date.now()
      await log.append(topic, [{ key: 'late-1', value: 'a' }])
      await waitFor('late record', () => c.records.length === 1, settleMs)
      // Long-poll, not a fixed sleep: well under the adapters' idle wait.
      expect(Date.now() - t0).toBeLessThan(2000)
      await c.consumer.stop()
    })

    it('commits resolved offsets durably and resumes the group from them', async () => {
      const topic = await freshTopic(2)
      const groupId = `g-${suffix()}`
      await log.append(topic, keysFor(40, 'c').map((key, i) => ({ key, value: String(i) })))
      // Resolve and commit only the first 5 records of each partition.
      const seen: LogRecord[] = []
      const a = track(
        await collect(log, {
          groupId,
          topic,
          onBatch: async (batch, ctx) => {
            for (const r of batch.records) {
              if (r.offset >= 5) break
              seen.push(r)
              ctx.resolveOffset(r.offset)
            }
            if (seen.some((r) => r.partition === batch.partition)) await ctx.commit()
          },
        }),
      )
      const ends = await log.endOffsets(topic)
      await waitFor('commits at 5', async () => {
        const committed = await log.committedOffsets(groupId, topic)
        return [0, 1].every((p) => committed.get(p) === Math.min(5, ends.get(p)!))
      }, settleMs)
      await a.consumer.stop()
      const b = track(await collect(log, { groupId, topic }))
      const expected = [0, 1].reduce((n, p) => n + Math.max(0, ends.get(p)! - 5), 0)
      await waitFor('the rest', () => b.records.length >= expected, settleMs)
      await new Promise((r) => setTimeout(r, 200))
      expect(b.records).toHaveLength(expected)
      expect(b.records.every((r) => r.offset >= 5)).toBe(true)
      await b.consumer.stop()
      const committed = await log.committedOffsets(groupId, topic)
      for (const p of [0, 1]) expect(committed.get(p)).toBe(ends.get(p))
    })

    it('delivers again to the next member what a stopped consumer resolved but never committed', async () => {
      const topic = await freshTopic(2)
      const groupId = `g-${suffix()}`
      await log.append(topic, keysFor(20, 'r').map((key, i) => ({ key, value: String(i) })))
      const a = track(await collect(log, { groupId, topic, commit: false }))
      await waitFor('first delivery', () => a.records.length === 20, settleMs)
      await a.consumer.stop()
      expect((await log.committedOffsets(groupId, topic)).size).toBe(0)
      const b = track(await collect(log, { groupId, topic }))
      await waitFor('redelivery', () => b.records.length === 20, settleMs)
      expect(b.records.map((r) => `${r.partition}:${r.offset}`).sort()).toEqual(a.records.map((r) => `${r.partition}:${r.offset}`).sort())
      await b.consumer.stop()
    })

    it('delivers a batch again after onBatch throws, from the last committed offset', async () => {
      const topic = await freshTopic(1)
      const groupId = `g-${suffix()}`
      await log.append(topic, keysFor(10, 't').map((key, i) => ({ key, value: String(i) })))
      let calls = 0
      const got: number[] = []
      const c = track(
        await collect(log, {
          groupId,
          topic,
          onBatch: async (batch, ctx) => {
            calls++
            if (calls === 1) {
              // Resolving then throwing must not count: only committed progress survives a failure.
              for (const r of batch.records) ctx.resolveOffset(r.offset)
              throw new Error('sink unavailable')
            }
            for (const r of batch.records) {
              got.push(r.offset)
              ctx.resolveOffset(r.offset)
            }
            await ctx.commit()
          },
        }),
      )
      await waitFor('redelivery after a throw', () => got.length >= 10, settleMs)
      expect(got.slice(0, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      await c.consumer.stop()
      expect((await log.committedOffsets(groupId, topic)).get(0)).toBe(10)
    })

    it('delivers nothing of a partition until onAssign succeeds, and retries onAssign', async () => {
      const topic = await freshTopic(1)
      await log.append(topic, [{ key: 'k', value: 'v' }])
      const events: string[] = []
      let attempts = 0
      const consumer = await log.consume({
        groupId: `g-${suffix()}`,
        topic,
        onAssign: async (ps) => {
          attempts++
          events.push(`assign ${ps.join(',')} #${attempts}`)
          if (attempts === 1) throw new Error('state store not ready')
        },
        onBatch: async (batch, ctx) => {
          events.push(`batch ${batch.records.length}`)
          for (const r of batch.records) ctx.resolveOffset(r.offset)
          await ctx.commit()
        },
      })
      open.push(consumer)
      await waitFor('delivery after the retried onAssign', () => events.some((e) => e.startsWith('batch')), settleMs)
      expect(events.slice(0, 3)).toEqual(['assign 0 #1', 'assign 0 #2', 'batch 1'])
      await consumer.stop()
    })

    it('retries a failed onAssign of an idle partition too (no record comes to retry it)', async () => {
      const topic = await freshTopic(1)
      let attempts = 0
      const consumer = await log.consume({
        groupId: `g-${suffix()}`,
        topic,
        onAssign: async () => {
          attempts++
          if (attempts === 1) throw new Error('state store not ready')
        },
        onBatch: async () => {},
      })
      open.push(consumer)
      await waitFor('a second onAssign without any record', () => attempts >= 2, settleMs)
      expect(attempts).toBeGreaterThanOrEqual(2)
      await consumer.stop()
    })

    it('starts at the end when fromBeginning is false and the group has no commit', async () => {
      const topic = await freshTopic(1)
      await log.append(topic, [{ key: 'old', value: 'old' }])
      const c = track(await collect(log, { groupId: `g-${suffix()}`, topic, fromBeginning: false }))
      await waitFor('assignment', () => c.consumer.assignment().length === 1, settleMs)
      // kafkajs resolves "latest" when the first fetch starts; give it a moment before appending.
      await new Promise((r) => setTimeout(r, 500))
      await log.append(topic, [{ key: 'new', value: 'new' }])
      await waitFor('new record', () => c.records.length >= 1, settleMs)
      expect(c.records.map((r) => r.value)).toEqual(['new'])
      await c.consumer.stop()
    })

    it('splits partitions when a second consumer joins and gives them back when it leaves', async () => {
      const topic = await freshTopic(4)
      const groupId = `g-${suffix()}`
      const a = track(await collect(log, { groupId, topic }))
      await waitFor('A owns all', () => a.consumer.assignment().length === 4, settleMs)
      expect(a.assigned.flat().sort()).toEqual([0, 1, 2, 3])

      const b = track(await collect(log, { groupId, topic }))
      await waitFor('split', () => a.consumer.assignment().length > 0 && b.consumer.assignment().length > 0 && a.consumer.assignment().length + b.consumer.assignment().length === 4, settleMs)
      const aParts = a.consumer.assignment()
      const bParts = b.consumer.assignment()
      expect([...aParts, ...bParts].sort()).toEqual([0, 1, 2, 3])
      expect(aParts.filter((p) => bParts.includes(p))).toEqual([])
      expect(a.revoked.flat().length).toBeGreaterThan(0)
      expect(b.assigned.flat()).toEqual(expect.arrayContaining(bParts))

      // After the split, each record goes to the member owning its partition, exactly once.
      const keys = keysFor(80, 'j')
      await log.append(topic, keys.map((key) => ({ key, value: key })))
      await waitFor('80 records across A and B', () => a.records.length + b.records.length >= 80, settleMs)
      expect(a.records.every((r) => aParts.includes(r.partition))).toBe(true)
      expect(b.records.every((r) => bParts.includes(r.partition))).toBe(true)
      expect(new Set([...a.records, ...b.records].map((r) => r.key)).size).toBe(80)

      await b.consumer.stop()
      expect(b.revoked.flat().sort()).toEqual(expect.arrayContaining(bParts))
      await waitFor('A owns all again', () => a.consumer.assignment().length === 4, settleMs)
      await log.append(topic, keys.map((key) => ({ key, value: `${key}-2` })))
      await waitFor('A gets the second round', () => a.records.filter((r) => r.value.endsWith('-2')).length >= 80, settleMs)
      await a.consumer.stop()
    })

    it('never delivers a partition to two members at once during a rebalance', async () => {
      const topic = await freshTopic(2)
      const groupId = `g-${suffix()}`
      await log.append(topic, keysFor(200, 'x').map((key) => ({ key, value: key })))
      const inFlight = new Set<number>()
      let overlap = 0
      let delivered = 0
      const slow = async (batch: Batch, ctx: BatchContext): Promise<void> => {
        if (inFlight.has(batch.partition)) overlap++
        inFlight.add(batch.partition)
        await new Promise((r) => setTimeout(r, 20))
        inFlight.delete(batch.partition)
        if (ctx.isStale()) return
        for (const r of batch.records) ctx.resolveOffset(r.offset)
        delivered += batch.records.length
        await ctx.commit().catch(() => undefined)
      }
      const a = track(await collect(log, { groupId, topic, maxBatchRecords: 10, onBatch: slow }))
      await waitFor('A started', () => delivered > 0, settleMs)
      const b = track(await collect(log, { groupId, topic, maxBatchRecords: 10, onBatch: slow }))
      await waitFor('all committed', async () => {
        const committed = await log.committedOffsets(groupId, topic)
        const ends = await log.endOffsets(topic)
        return [0, 1].every((p) => committed.get(p) === ends.get(p))
      }, settleMs)
      expect(overlap).toBe(0)
      await Promise.all([a.consumer.stop(), b.consumer.stop()])
    })
  })
}
