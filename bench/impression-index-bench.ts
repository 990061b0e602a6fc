/**
 * Impression states as a partition store commits them, with impression ids that sort randomly
 * (UUIDs, as many ad servers send): the impression index (core/src/state/impression-index.ts, keys
 * bucketed by the hour the state expires in) against the layout it replaced (`i:<scope>` string
 * keys in the main database, whose B-tree holds every live id in key order). Each batch looks up
 * 20k ids it does not hold (a new impression's lookup), then puts their states in one transaction;
 * the event time moves on one hour every five batches, as in a partition taking 20k events per
 * 12 minutes. Reports CPU of the whole process per state (LMDB's own thread included) over the
 * batches after the first ten, and the B-tree bytes per state at the end.
 *
 *   node --import tsx bench/impression-index-bench.ts
 *
 * Env: IMPRESSION_INDEX_BENCH_BATCHES (60 batches of 20k states per variant: 1.2 M states held at the end).
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { open } from 'lmdb'
import { encodeImpression } from '../core/src/state/impression-codec.js'
import { PARTITION_MAX_DBS } from '../core/src/state/hour-slots.js'
import { ImpressionIndex, fallbackHour } from '../core/src/state/impression-index.js'
import type { ImpressionState } from '../core/src/state/keys.js'

const BATCH = 20_000
const WARM = 10
const H = 3_600_000
const TTL = 25 * H

export interface ImpressionIndexFigures {
  variant: 'index' | 'keyed'
  states: number
  microsPerState: number
  bytesPerState: number
}

const uuid = (n: number): string => {
  const h = createHash('sha256').update(String(n)).digest('hex')
  return `pub_1\u001f${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

const cpuMicros = (): number => {
  const c = process.cpuUsage()
  return c.user + c.system
}

async function run(variant: ImpressionIndexFigures['variant'], batches: number): Promise<ImpressionIndexFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'adc-impidx-bench-'))
  const root = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 8 * 1024 ** 3, maxDbs: PARTITION_MAX_DBS })
  const index = ImpressionIndex.open(root)
  const start = Date.UTC(2026, 10, 23)
  let measured = 0
  let micros = 0
  let n = 0
  try {
    for (let b = 0; b < batches; b++) {
      const now = start + Math.floor(b / 5) * H
      const names: string[] = []
      for (let i = 0; i < BATCH; i++) names.push(uuid(n + i))
      const c0 = cpuMicros()
      // The old layout's lookups went through a Bloom filter too: only the index's are measured as they run.
      if (variant === 'index') for (const name of names) if (index.get(name) !== undefined) throw new Error('a new id was found')
      await root.transaction(() => {
        for (let i = 0; i < names.length; i++) {
          const st: ImpressionState = { io: n + i, its: now, ich: 'web', il: now, ex: now + TTL }
          if (variant === 'index') index.put(names[i]!, st, fallbackHour(now, TTL))
          else void root.put(`i:${names[i]}`, encodeImpression(st))
        }
      })
      if (variant === 'index') index.committed()
      n += BATCH
      if (b >= WARM) {
        micros += cpuMicros() - c0
        measured += BATCH
      }
    }
    let used: number
    if (variant === 'index') used = index.stats().usedBytes
    else {
      const st = root.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
      used = st.pageSize * (st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages)
    }
    return { variant, states: n, microsPerState: Math.round((micros / measured) * 100) / 100, bytesPerState: Math.round((used / n) * 10) / 10 }
  } finally {
    await root.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function runImpressionIndexBench(batches = Number(process.env.IMPRESSION_INDEX_BENCH_BATCHES ?? 60)): Promise<ImpressionIndexFigures[]> {
  // Alternating, so that the machine's drift falls on both.
  const out: ImpressionIndexFigures[] = []
  for (const variant of ['keyed', 'index', 'keyed', 'index'] as const) out.push(await run(variant, batches))
  return out
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const f of await runImpressionIndexBench()) console.log(`${f.variant}: ${f.microsPerState} µs CPU per state, ${f.bytesPerState} B of B-tree per state, ${f.states} states held`)
}
