/**
 * The delivery dedupe index alone (core/src/state/delivery-index.ts), as the dedupe step drives it:
 * per event a lookup of its delivery key, the key added when new, a tenth of the keys re-delivered
 * in the same batch, then the batch written in one LMDB transaction. Reports CPU per key, and the
 * part of it that is LMDB's put (the same keys and values put in a transaction of their own).
 *
 *   node --import tsx bench/delivery-index-bench.ts
 *
 * Env: DELIVERY_BENCH_BATCHES (20 batches of 20k keys; the first five are not measured).
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { open } from 'lmdb'
import { DeliveryIndex } from '../core/src/state/delivery-index.js'
import { PARTITION_MAX_DBS } from '../core/src/state/hour-slots.js'

const BATCH = 20_000
const WARM = 5

export interface DeliveryIndexFigures {
  keys: number
  /** Lookup, add and commit, per key. */
  microsPerKey: number
  /** LMDB's put of 16-byte keys and values alone, per key, in transactions of the same size. */
  lmdbPutMicrosPerKey: number
  bytesPerKey: number
}

const cpuMicros = (c: NodeJS.CpuUsage): number => c.user + c.system

export async function runDeliveryIndexBench(batches = Number(process.env.DELIVERY_BENCH_BATCHES ?? 20)): Promise<DeliveryIndexFigures> {
  const n = Math.max(WARM + 1, batches)
  const keys = Array.from({ length: BATCH * n }, (_, i) => createHash('sha256').update(`pub_demo|impression|${i}`).digest('hex').slice(0, 32))
  const t0 = Date.UTC(2026, 11, 1)
  const dir = mkdtempSync(join(tmpdir(), 'adc-delivery-bench-'))
  const root = open({ path: dir, maxDbs: PARTITION_MAX_DBS, mapSize: 2 * 1024 ** 3 })
  const index = DeliveryIndex.open(root)
  const raw = root.openDB<Buffer, Buffer>({ name: 'raw-puts', keyEncoding: 'binary', encoding: 'binary', compression: false })
  let measured = 0
  let lmdb = 0
  try {
    for (let b = 0; b < n; b++) {
      const c0 = process.cpuUsage()
      for (let i = b * BATCH; i < (b + 1) * BATCH; i++) {
        const key = keys[i]!
        const idTime = t0 + i * 10
        const receivedAt = idTime + 50
        if (index.firstSeen(key, idTime, receivedAt) === undefined) index.add(key, idTime, i, receivedAt + 90_000_000, receivedAt)
        if (i % 10 === 0 && index.firstSeen(key, idTime, receivedAt + 5) !== undefined) index.resighted(key, idTime, receivedAt + 5, receivedAt + 90_000_005)
      }
      await root.transaction(() => index.write())
      index.committed()
      const c1 = process.cpuUsage()
      // LMDB alone: the same number of random 16-byte keys with 16-byte values.
      const buf = Buffer.allocUnsafe(BATCH * 32)
      for (let i = 0; i < BATCH; i++) buf.write(keys[b * BATCH + i]!, i * 32, 'hex')
      const c2 = process.cpuUsage()
      await root.transaction(() => {
        for (let i = 0; i < BATCH; i++) void raw.put(buf.subarray(i * 32, i * 32 + 16), buf.subarray(i * 32 + 16, i * 32 + 32))
      })
      const c3 = process.cpuUsage()
      if (b >= WARM) {
        measured += cpuMicros(c1) - cpuMicros(c0)
        lmdb += cpuMicros(c3) - cpuMicros(c2)
      }
    }
    const stats = index.stats()
    const count = (n - WARM) * BATCH
    return {
      keys: stats.keys,
      microsPerKey: Math.round((measured / count) * 100) / 100,
      lmdbPutMicrosPerKey: Math.round((lmdb / count) * 100) / 100,
      bytesPerKey: Math.round((stats.usedBytes / stats.keys) * 10) / 10,
    }
  } finally {
    await root.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const f = await runDeliveryIndexBench()
  console.log(`delivery index: ${f.microsPerKey} µs of CPU per key (lookup, add, commit), of which LMDB's put alone ${f.lmdbPutMicrosPerKey} µs; ${f.bytesPerKey} B per key over ${f.keys} keys`)
}
