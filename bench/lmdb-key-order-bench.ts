/**
 * What the order of keys costs an LMDB commit, in the delivery index's layout (state/delivery-index.ts:
 * a binary database, 16-byte keys `[hour: u32][12 bytes]`, 10-byte values, one transaction per
 * 20k-key batch, as the processor commits them):
 * - `random`: the 12 bytes are a hash, as delivery keys are today: every put lands on another leaf
 *   page of the hour, so a batch dirties (and the commit writes) about one page per key, more of
 *   them as the database grows;
 * - `ordered`: the 12 bytes start with a counter (as a time within the hour would): puts land on the
 *   B-tree's right edge, a batch dirties a handful of pages.
 *
 *   node --import tsx bench/lmdb-key-order-bench.ts
 *
 * Env: LMDB_BENCH_BATCHES (30), LMDB_BENCH_BATCH (20000). Prints CPU per put (the transaction and
 * the flush included) over the first and the last five batches of each order.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { open } from 'lmdb'

const KEY = 16
const VALUE = 10

export async function runLmdbKeyOrderBench({ batches = 30, batch = 20_000 } = {}): Promise<Record<'random' | 'ordered', { firstUsPerPut: number; lastUsPerPut: number; keys: number }>> {
  const out = {} as Record<'random' | 'ordered', { firstUsPerPut: number; lastUsPerPut: number; keys: number }>
  for (const order of ['random', 'ordered'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'adc-lmdb-order-'))
    const root = open({ path: dir, compression: false, mapSize: 2 * 1024 ** 3 })
    const db = root.openDB<Buffer, Buffer>({ name: 'd', keyEncoding: 'binary', encoding: 'binary', compression: false })
    const perPut: number[] = []
    let seq = 0
    try {
      for (let b = 0; b < batches; b++) {
        const buf = randomBytes(batch * (KEY + VALUE))
        for (let i = 0; i < batch; i++) {
          const at = i * (KEY + VALUE)
          buf.writeUInt32BE(490_000, at) // one hour bucket
          if (order === 'ordered') buf.writeUInt32BE(seq++, at + 4)
        }
        const c0 = process.cpuUsage()
        await root.transaction(() => {
          for (let i = 0; i < batch; i++) {
            const at = i * (KEY + VALUE)
            void db.put(buf.subarray(at, at + KEY), buf.subarray(at + KEY, at + KEY + VALUE))
          }
        })
        await root.flushed
        const c = process.cpuUsage(c0)
        perPut.push((c.user + c.system) / batch)
      }
    } finally {
      await root.close()
      rmSync(dir, { recursive: true, force: true })
    }
    const mean = (xs: number[]): number => Math.round((xs.reduce((a, x) => a + x, 0) / xs.length) * 1000) / 1000
    out[order] = { firstUsPerPut: mean(perPut.slice(0, 5)), lastUsPerPut: mean(perPut.slice(-5)), keys: batches * batch }
  }
  return out
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runLmdbKeyOrderBench({ batches: Number(process.env.LMDB_BENCH_BATCHES ?? 30), batch: Number(process.env.LMDB_BENCH_BATCH ?? 20_000) })
  console.log(JSON.stringify(r, null, 2))
}
