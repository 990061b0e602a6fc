/**
 * The processor's pipeline step by step, each figure steady enough to compare two versions of one
 * step: the same batch of records goes through the pipeline cut after each step (decode, campaign,
 * dedupe, join, IVT, sink), through the event worker's whole build, and through a build with its
 * state commit into a fresh store; every variant runs many times and its fastest pass counts. Whole
 * runs of `processor-bench.ts` swing by a third on this machine; the fastest of many passes of one
 * part does not (a few per cent). What a step adds is the difference to the cut before it (`decode`:
 * the envelope's check beyond JSON.parse; `build`: the worker's loop, the join's expiries and the
 * batch's rows and rollups finished; `commit`: the partition store's write).
 *
 * Within a pass nothing is committed (the store's batch overlay is discarded after it), so every
 * pass sees the same state. By default that state is empty: each delivery key and impression is new.
 * With STEPS_BENCH_STATE=<n>, the n records of the same traffic before the measured batch are
 * committed first (20k per batch), so lookups meet a partition's live state (the measured batch's
 * clicks find their impressions, re-deliveries their keys). The commit variant writes into a new
 * store each pass (with that state copied in first and the batch built once untimed, so the store's
 * key filters are in memory, as a running processor's are).
 *
 *   node --max-semi-space-size=512 --import tsx bench/processor-steps-bench.ts
 *
 * The traffic's event ids carry their event's time (as clients' ULIDs do), and its impression ids
 * are random UUIDs, as many ad servers send (STEPS_BENCH_ORDERED=1: `imp_<seed>_<n>`, which sort
 * nearly in arrival order). The commit variant also reports its commit alone (`commitMicros`),
 * the fastest pass's `PartitionStore.commit` without the build before it.
 *
 * Env: STEPS_BENCH_RECORDS (20000, one processor batch), STEPS_BENCH_PASSES (20), STEPS_BENCH_STATE (0),
 * STEPS_BENCH_ORDERED (0), STEPS_BENCH_ONLY (a cut: only that variant runs, the others report Infinity).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { LogRecord } from '../core/src/log/log.js'
import { createPipeline, type Pipeline } from '../core/src/pipeline/pipeline.js'
import { createCampaignStep } from '../core/src/pipeline/steps/campaign-step.js'
import { createDecodeStep } from '../core/src/pipeline/steps/decode-step.js'
import { createDedupeStep } from '../core/src/pipeline/steps/dedupe-step.js'
import { createIvtStep } from '../core/src/pipeline/steps/ivt-step.js'
import { createJoinStage } from '../core/src/pipeline/steps/join-step.js'
import { createSinkStep } from '../core/src/pipeline/steps/sink-step.js'
import type { Decoded, Deduped, Joined, RawRecord, Scored } from '../core/src/pipeline/types.js'
import { createEventWorker } from '../core/src/processor/event-worker.js'
import { BatchBuilder } from '../core/src/sinks/batch-builder.js'
import { PartitionStore } from '../core/src/state/partition-store.js'
import { trafficMix } from '../core/src/testing/events.js'

export interface StepsFigures {
  records: number
  passes: number
  /** Fastest pass, CPU µs per record, of the pipeline cut after each step (cumulative). */
  cumulativeMicros: Record<string, number>
  /** What each step adds: the difference to the cut before it. */
  stepMicros: Record<string, number>
  /** Fastest pass of the state commit alone, CPU µs per record. */
  commitMicros: number
}

const CUTS = ['parse', 'decode', 'campaign', 'dedupe', 'join', 'ivt', 'sink', 'build', 'commit'] as const
type Cut = (typeof CUTS)[number]

export async function runProcessorStepsBench(options: { records?: number; passes?: number; state?: number } = {}): Promise<StepsFigures & { stateRecords: number }> {
  const total = options.records ?? Number(process.env.STEPS_BENCH_RECORDS ?? 20_000)
  const passes = options.passes ?? Number(process.env.STEPS_BENCH_PASSES ?? 20)
  const only = process.env.STEPS_BENCH_ONLY as Cut | undefined
  const state = options.state ?? Number(process.env.STEPS_BENCH_STATE ?? 0)
  const now = Date.now()
  const all: LogRecord[] = trafficMix(state + total, { start: now - (state + total) * 20 - 3_600_000, spacingMs: 20, timedIds: true, randomImpressionIds: process.env.STEPS_BENCH_ORDERED !== '1' })
    .records.slice(0, state + total)
    // Values as a log gives them: decoded from bytes into flat strings. JSON.stringify's own strings
    // are trees V8 reads through an indirection, which a scan of the text pays for at every character.
    .map((r, offset) => ({ topic: 'ad-events', partition: 0, offset, key: r.key ?? '', value: Buffer.from(String(r.value)).toString(), timestamp: now }))
  const records = all.slice(state)
  const root = mkdtempSync(join(tmpdir(), 'adc-steps-bench-'))
  const stateDir = join(root, 'state')
  // The live state the measured batch meets: the records before it, committed batch by batch.
  const seed = PartitionStore.open(stateDir, 0)
  const seeder = createEventWorker(seed, { eventRowObjects: false })
  for (let i = 0; i < state; i += 20_000) {
    const chunk = all.slice(i, Math.min(i + 20_000, state))
    await seeder.build('ad-events', chunk)
    await seed.commit(chunk[chunk.length - 1]!.offset)
  }
  await seed.close()
  const store = PartitionStore.open(stateDir, 0)
  let builder = new BatchBuilder('ad-events', 0, state, state + total - 1, now, false)
  const joinStage = createJoinStage<Deduped>({ store })
  const decode = createPipeline<RawRecord, Decoded>(createDecodeStep())
  const campaign = decode.pipe(createCampaignStep<Decoded>({ isBooked: () => true }))
  const dedupe = campaign.pipe(createDedupeStep<Decoded>({ store }))
  const joined = dedupe.pipe(joinStage.step)
  const ivt = joined.pipe(createIvtStep<Joined>({ store }))
  const sink = ivt.pipe(createSinkStep<Scored>(() => builder))
  const pipelines: Partial<Record<Cut, Pipeline<RawRecord, unknown>>> = { decode, campaign, dedupe, join: joined, ivt, sink }
  const worker = createEventWorker(store, { eventRowObjects: false })
  const raw = (r: LogRecord): RawRecord => ({ ref: { topic: r.topic, partition: r.partition, offset: r.offset }, payload: r.value, appendedAt: r.timestamp })
  let sinkHole = 0
  let commitOnly = Infinity

  async function pass(cut: Cut): Promise<number> {
    if (cut === 'commit') {
      const dir = mkdtempSync(join(root, 'commit-'))
      cpSync(stateDir, dir, { recursive: true })
      const fresh = PartitionStore.open(dir, 0)
      const w = createEventWorker(fresh, { eventRowObjects: false })
      // Once untimed: a new store builds its hours' key filters from LMDB at its first lookups (a
      // running processor has them), then the batch is discarded.
      await w.build('ad-events', records)
      fresh.discard()
      const cpu0 = process.cpuUsage()
      const built = await w.build('ad-events', records)
      const cpu1 = process.cpuUsage()
      await fresh.commit(state + total - 1)
      const cpu = process.cpuUsage(cpu0)
      const alone = process.cpuUsage(cpu1)
      commitOnly = Math.min(commitOnly, alone.user + alone.system)
      sinkHole += built.counts.billable
      await fresh.close()
      rmSync(dir, { recursive: true, force: true })
      return cpu.user + cpu.system
    }
    builder = new BatchBuilder('ad-events', 0, state, state + total - 1, now, false)
    const cpu0 = process.cpuUsage()
    if (cut === 'parse') for (const r of records) sinkHole += (JSON.parse(r.value) as { receivedAt: number }).receivedAt & 1
    else if (cut === 'build') sinkHole += (await worker.build('ad-events', records)).counts.billable
    else {
      const p = pipelines[cut]!
      for (const r of records) {
        const out = p.run(raw(r))
        if (out instanceof Promise) throw new Error('the steps answer synchronously')
        sinkHole += out.kind === 'ok' ? 1 : 0
        for (const _ of joinStage.drainReleased()) sinkHole++
      }
    }
    const cpu = process.cpuUsage(cpu0)
    store.discard()
    return cpu.user + cpu.system
  }

  const best = Object.fromEntries(CUTS.map((c) => [c, Infinity])) as Record<Cut, number>
  try {
    for (let i = 0; i < passes; i++) for (const cut of CUTS) if (!only || cut === only) best[cut] = Math.min(best[cut], await pass(cut))
  } finally {
    await store.close()
    rmSync(root, { recursive: true, force: true })
  }
  if (sinkHole < 0) console.log(sinkHole)
  const round = (n: number): number => Math.round(n * 1000) / 1000
  const cumulativeMicros = Object.fromEntries(CUTS.map((c) => [c, round(best[c] / total)]))
  const stepMicros: Record<string, number> = {}
  CUTS.forEach((c, i) => {
    const before = i === 0 ? 0 : best[CUTS[i - 1]!]
    stepMicros[c] = round((best[c] - before) / total)
  })
  return { records: total, passes, stateRecords: state, cumulativeMicros, stepMicros, commitMicros: round(commitOnly / total) }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const f = await runProcessorStepsBench()
  console.log(JSON.stringify(f, null, 2))
  console.log(`µs per record (fastest of ${f.passes} passes of ${f.records}, ${f.stateRecords} records of state before): ${Object.entries(f.stepMicros).map(([k, v]) => `${k} ${v}`).join(', ')}; the whole build ${f.cumulativeMicros.build}, with its commit ${f.cumulativeMicros.commit} (the commit alone ${f.commitMicros})`)
}
