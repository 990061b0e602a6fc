import { afterEach, describe, expect, it } from 'vitest'
import { advanceWatermark, sweepExpired } from './expiry.js'
import { PartitionStore } from './partition-store.js'
import { impressionKey, impressionScope, joinDeadlineKey, pad, waitingKey } from './keys.js'
import { open } from 'lmdb'
import { tempDirs } from '../testing/temp-dirs.js'

const dirs = tempDirs('adc-store-')
const fresh = (): string => dirs.make()
afterEach(() => dirs.removeAll())

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

  it("finds every impression state written in this batch, and none it did not write, with two stores' lookups interleaved and the impression filter rebuilt as it fills", async () => {
    const a = PartitionStore.open(fresh(), 0)
    const b = PartitionStore.open(fresh(), 1)
    const key = (store: string, i: number) => impressionKey(impressionScope('pub_a', `imp_${store}_${i}`))
    for (let i = 0; i < 100; i++) a.put(key('a', i), { io: i })
    await a.commit(99)
    a.put(key('a', 100), { io: 100 })
    expect(a.get(key('a', 100))).toEqual({ io: 100 })
    expect(a.get(key('a', 5))).toEqual({ io: 5 })
    // More keys than the filter's first capacity (16k), so it is built again within the batch.
    for (let i = 101; i < 70_000; i++) {
      a.put(key('a', i), { io: i })
      b.put(key('b', i), { io: i })
      expect(b.get(key('b', i))).toEqual({ io: i })
      expect(a.get(key('a', i))).toEqual({ io: i })
      expect(a.get(key('b', i))).toBeUndefined()
    }
    for (const i of [100, 101, 40_000, 69_999]) expect(a.get(key('a', i))).toEqual({ io: i })
    a.remove(key('a', 7))
    expect(a.get(key('a', 7))).toBeUndefined()
    await a.commit(70_000)
    expect(a.get(key('a', 7))).toBeUndefined()
    expect(a.get(key('a', 69_999))).toEqual({ io: 69_999 })
    await a.close()
    await b.close()
  }, 60_000)

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
    const W1 = waitingKey(impressionScope('pub_a', 'imp_1'))
    const W2 = waitingKey(impressionScope('pub_a', 'imp_2'))
    const s = PartitionStore.open(fresh(), 0)
    s.put(W1, [{ n: 1 }])
    expect(s.get(W1)).toEqual([{ n: 1 }])
    await s.commit(1)
    expect(s.get(W1)).toEqual([{ n: 1 }])
    expect(s.get(W2)).toBeUndefined()
    const dir = fresh()
    const t = PartitionStore.open(dir, 0)
    await t.restore({ entries: s.entries(), applied: 1, intent: undefined, changelog: { next: 0 }, reset: true })
    expect(t.get(W1)).toEqual([{ n: 1 }])
    await t.close()
    const u = PartitionStore.open(dir, 0)
    expect(u.get(W1)).toEqual([{ n: 1 }])
    u.remove(W1)
    await u.commit(2)
    expect(u.get(W1)).toBeUndefined()
    await u.restore({ entries: [[W1, [{ n: 3 }]]], applied: 3, intent: undefined, changelog: { next: 0 } })
    expect(u.get(W1)).toEqual([{ n: 3 }])
    await u.close()
    await s.close()
  })
})

describe('format 2 → 3: impression keys scoped by publisher', () => {
  const T = Date.UTC(2026, 10, 23, 12, 0, 0)
  const click = (publisherId: string, n: number) => ({ ref: { topic: 'ad-events', partition: 0, offset: n }, appendedAt: T, state: 'waiting', written: true, envelope: { type: 'click', event: { publisherId, impressionId: 'imp_2', ts: T } } })

  async function format2Store(dir: string, extra: Record<string, unknown> = {}): Promise<void> {
    const raw = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3 })
    await raw.transaction(() => {
      void raw.put('~format', 2)
      void raw.put('~wm', T)
      void raw.put('i:imp_1', { io: 5, its: T - 1000, ich: 'web', il: T - 900, ex: T + 25 * 3_600_000 })
      void raw.put('w:imp_2', [click('pub_a', 7), click('pub_b', 8), click('pub_a', 9)])
      void raw.put(`q:${pad(T + 30 * 60_000)}:imp_2`, null)
      void raw.put(`q:${pad(T + 40 * 60_000)}:imp_gone`, null) // a deadline whose list is gone
      for (const [k, v] of Object.entries(extra)) void raw.put(k, v)
    })
    await raw.close()
  }

  it('moves waiting clicks and deadlines to their publishers, and reads the old impression states in place of missing scoped ones until they expire', async () => {
    const dir = fresh()
    await format2Store(dir)
    let s = PartitionStore.open(dir, 0)
    expect(s.upgraded).toEqual({ waiting: 1, deadlines: 2, unscopedImpressions: 1 })
    const a = impressionScope('pub_a', 'imp_2')
    const b = impressionScope('pub_b', 'imp_2')
    expect((s.get<Array<{ ref: { offset: number } }>>(waitingKey(a)) ?? []).map((w) => w.ref.offset)).toEqual([7, 9])
    expect((s.get<Array<{ ref: { offset: number } }>>(waitingKey(b)) ?? []).map((w) => w.ref.offset)).toEqual([8])
    expect(s.get('w:imp_2')).toBeUndefined()
    expect(s.range('q:', 'q:~', 10).map(([k]) => k)).toEqual([joinDeadlineKey(T + 30 * 60_000, a), joinDeadlineKey(T + 30 * 60_000, b)])
    // The old state names no publisher: it stands for the id's scopes until it expires.
    const old = { io: 5, its: T - 1000, ich: 'web', il: T - 900, ex: T + 25 * 3_600_000 }
    expect(s.get(impressionKey(impressionScope('pub_a', 'imp_1')))).toEqual(old)
    // A scope's own state wins over it.
    s.put(impressionKey(impressionScope('pub_b', 'imp_1')), { io: 11 })
    await s.commit(11)
    expect(s.get(impressionKey(impressionScope('pub_b', 'imp_1')))).toEqual({ io: 11 })
    await s.close()
    s = PartitionStore.open(dir, 0) // the fallback survives a reopen (format 3 now: no second upgrade)
    expect(s.upgraded).toBeUndefined()
    expect(s.get(impressionKey(impressionScope('pub_c', 'imp_1')))).toEqual(old)
    // Once the watermark passed the old states' expiry, they are no longer read, and the marker goes.
    s.advanceWatermark(T + 25 * 3_600_000 + 1)
    await s.commit(12)
    expect(s.get(impressionKey(impressionScope('pub_a', 'imp_1')))).toBeUndefined()
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.get(impressionKey(impressionScope('pub_a', 'imp_1')))).toBeUndefined()
    expect([...s.entries()].map(([k]) => k)).not.toContain('~unscoped')
    await s.close()
  })

  it('upgrades format-2 entries of a restored changelog the same way', async () => {
    const s = PartitionStore.open(fresh(), 0)
    await s.restore({
      entries: [['~wm', T], ['w:imp_2', [click('pub_b', 3)]], [`q:${pad(T + 60_000)}:imp_2`, null], ['i:imp_9', { io: 1, ex: T + 60_000 }]],
      applied: 3, intent: undefined, changelog: { next: 1 },
    })
    expect(s.get(waitingKey(impressionScope('pub_b', 'imp_2')))).toHaveLength(1)
    expect(s.get('w:imp_2')).toBeUndefined()
    expect(s.range('q:', 'q:~', 10).map(([k]) => k)).toEqual([joinDeadlineKey(T + 60_000, impressionScope('pub_b', 'imp_2'))])
    expect(s.get(impressionKey(impressionScope('pub_x', 'imp_9')))).toEqual({ io: 1, ex: T + 60_000 })
    await s.close()
  })

  it('leaves a waiting list it cannot read as it was instead of failing the open', async () => {
    const dir = fresh()
    await format2Store(dir, { 'w:odd': [{ n: 1 }] })
    const s = PartitionStore.open(dir, 0)
    expect(s.upgraded?.waiting).toBe(1)
    await s.close()
  })
})
