/**
 * The committed impression state (`i:` keys of a partition store) as the processor's codec writes
 * it (core/src/state/impression-codec.ts, fixed-width bytes) against the msgpack record it replaced,
 * on LMDB with the partition store's options: CPU per put in 20k-key transactions, per read of a
 * committed key, and B-tree bytes per entry.
 *
 *   node --import tsx bench/impression-state-bench.ts
 *
 * Env: IMPRESSION_BENCH_ROUNDS (12 transactions of 20k keys per variant; the first two are not measured).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { open } from 'lmdb'
import { decodeImpression, encodeImpression } from '../core/src/state/impression-codec.js'
import type { ImpressionState } from '../core/src/state/keys.js'

const BATCH = 20_000

export interface ImpressionStateFigures {
  variant: 'codec' | 'msgpack'
  putMicros: number
  readMicros: number
  bytesPerEntry: number
}

async function measure(variant: 'codec' | 'msgpack', rounds: number): Promise<ImpressionStateFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'adc-imp-bench-'))
  const db = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3 })
  const keys = Array.from({ length: BATCH * rounds }, (_, i) => `i:pub_demo\u001fimp_${((i * 2654435761) % 1e9).toString(36)}_${i}`)
  let put = 0
  let read = 0
  let sink = 0
  for (let r = 0; r < rounds; r++) {
    const now = Date.now()
    const c0 = process.cpuUsage()
    await db.transaction(() => {
      for (let i = 0; i < BATCH; i++) {
        const s: ImpressionState = { io: r * BATCH + i, its: now, ich: 'web', il: now, ex: now + 90_000_000 }
        void db.put(keys[r * BATCH + i]!, variant === 'codec' ? encodeImpression(s) : s)
      }
    })
    await db.flushed
    const c1 = process.cpuUsage()
    // Reads of committed keys (the previous round's): a click or a duplicate finding its impression.
    for (let i = 0; i < BATCH; i++) {
      const v = db.get(keys[Math.max(0, r - 1) * BATCH + i]!)
      sink += ((variant === 'codec' ? decodeImpression(v) : v) as ImpressionState).io! & 1
    }
    const c2 = process.cpuUsage()
    if (r >= 2) {
      put += c1.user + c1.system - (c0.user + c0.system)
      read += c2.user + c2.system - (c1.user + c1.system)
    }
  }
  const st = db.getStats() as { pageSize: number; entryCount: number; treeBranchPageCount: number; treeLeafPageCount: number }
  await db.close()
  rmSync(dir, { recursive: true, force: true })
  if (sink < 0) console.log(sink)
  const n = (rounds - 2) * BATCH
  return {
    variant,
    putMicros: Math.round((put / n) * 100) / 100,
    readMicros: Math.round((read / n) * 100) / 100,
    bytesPerEntry: Math.round((st.pageSize * (st.treeBranchPageCount + st.treeLeafPageCount)) / st.entryCount),
  }
}

/** Both variants, alternating twice (this machine's run-to-run noise is of the size of the difference). */
export async function runImpressionStateBench(rounds = Number(process.env.IMPRESSION_BENCH_ROUNDS ?? 12)): Promise<ImpressionStateFigures[]> {
  const out: ImpressionStateFigures[] = []
  for (let i = 0; i < 2; i++) for (const v of ['msgpack', 'codec'] as const) out.push(await measure(v, Math.max(3, rounds)))
  return out
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const f of await runImpressionStateBench()) console.log(`${f.variant.padEnd(7)} put ${f.putMicros} µs, read ${f.readMicros} µs, ${f.bytesPerEntry} B per entry`)
}
