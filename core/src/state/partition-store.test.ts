import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { advanceWatermark, sweepExpired } from './expiry.js'
import { PartitionStore } from './partition-store.js'

const dirs: string[] = []
const fresh = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'adc-store-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('PartitionStore', () => {
  it('reads its own batch writes, and keeps nothing of a batch that is discarded', async () => {
    const dir = fresh()
    const s = PartitionStore.open(dir, 0)
    s.put('d:a', 1)
    expect(s.get('d:a')).toBe(1)
    s.discard()
    expect(s.get('d:a')).toBeUndefined()
    await s.close()
  })

  it('commits the batch and its applied offset together, durably across reopen; the intent is cleared', async () => {
    const dir = fresh()
    let s = PartitionStore.open(dir, 0)
    await s.writeIntent({ minOffset: 0, maxOffset: 9 })
    s.put('d:a', 3)
    s.put('x:0000000001:d:a', null)
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.pendingIntent()).toEqual({ minOffset: 0, maxOffset: 9 })
    expect(s.get('d:a')).toBeUndefined()
    expect(s.appliedOffset()).toBe(-1)
    s.put('d:a', 3)
    await s.commit(9)
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.get('d:a')).toBe(3)
    expect(s.appliedOffset()).toBe(9)
    expect(s.pendingIntent()).toBeUndefined()
    await s.close()
  })

  it('ranges merge committed keys with the batch overlay, in key order, without deleted keys', async () => {
    const dir = fresh()
    const s = PartitionStore.open(dir, 0)
    s.put('q:1', null)
    s.put('q:3', null)
    await s.commit(0)
    s.put('q:2', null)
    s.remove('q:3')
    s.put('r:1', null)
    expect(s.range('q:', 'q:~', 10).map(([k]) => k)).toEqual(['q:1', 'q:2'])
    await s.close()
  })

  it('writes a batch\'s expiry schedule as one string per minute, and sweeps it, an earlier array entry and a key holding a newline alike', async () => {
    const s = PartitionStore.open(fresh(), 0)
    const minute = 60_000
    s.put('d:a', 1)
    s.put('d:b', 2)
    s.put('i:x\ny', 3)
    s.expireAt(5 * minute, 'd:a')
    s.expireAt(5 * minute, 'd:b')
    s.expireAt(6 * minute, 'i:x\ny')
    expect(s.pendingEntries(9).filter(([k]) => k.startsWith('x:'))).toEqual([
      ['x:0000000005:000000000000009', 'd:a\nd:b'],
      ['x:0000000006:000000000000009', ['i:x\ny']],
    ])
    await s.commit(9)
    // An entry as the earlier version wrote it: an array of keys.
    s.put('d:c', 4)
    s.put('x:0000000004:000000000000001', ['d:c'])
    await s.commit(10)
    advanceWatermark(s, 7 * minute)
    expect(sweepExpired(s)).toBe(4)
    await s.commit(11)
    expect(['d:a', 'd:b', 'd:c', 'i:x\ny'].map((k) => s.get(k))).toEqual([undefined, undefined, undefined, undefined])
    expect(s.range('x:', 'x;', 10)).toEqual([])
    await s.close()
  })

  it('reads waiting-click keys (kept in memory) after a commit, a reopen, a delete and a restore from another store', async () => {
    const s = PartitionStore.open(fresh(), 0)
    s.put('w:imp_1', [{ n: 1 }])
    expect(s.get('w:imp_1')).toEqual([{ n: 1 }])
    await s.commit(1)
    expect(s.get('w:imp_1')).toEqual([{ n: 1 }])
    expect(s.get('w:imp_2')).toBeUndefined()
    const dir = fresh()
    const t = PartitionStore.open(dir, 0)
    await t.restore({ entries: s.entries(), applied: 1, intent: undefined, changelog: { next: 0 }, reset: true })
    expect(t.get('w:imp_1')).toEqual([{ n: 1 }])
    await t.close()
    const u = PartitionStore.open(dir, 0)
    expect(u.get('w:imp_1')).toEqual([{ n: 1 }])
    u.remove('w:imp_1')
    await u.commit(2)
    expect(u.get('w:imp_1')).toBeUndefined()
    await u.restore({ entries: [['w:imp_1', [{ n: 3 }]]], applied: 3, intent: undefined, changelog: { next: 0 } })
    expect(u.get('w:imp_1')).toEqual([{ n: 3 }])
    await u.close()
    await s.close()
  })
})
