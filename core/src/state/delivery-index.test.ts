import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import type { LogRecord } from '../log/log.js'
import { ChangelogFold, claimRecord, deltaRecords, snapshotRecords } from './changelog.js'
import { advanceWatermark, sweepExpired } from './expiry.js'
import { PartitionStore, StateFormatError, type StateEntry } from './partition-store.js'

const dirs: string[] = []
const fresh = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'adc-deliveries-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const H = 3_600_000
const T = Date.UTC(2026, 10, 23, 8, 0, 0)
const key = (n: number): string => n.toString(16).padStart(8, '0') + 'ab'.repeat(12) // distinct in the first 96 bits

describe('delivery index', () => {
  it('finds keys by event-id hour across commits, and expires a whole hour once the watermark passes its last key', async () => {
    const s = PartitionStore.open(fresh(), 0)
    s.deliveries.add(key(1), T, 10, T + 25 * H)
    s.deliveries.add(key(2), T + 10 * 60_000, 11, T + 26 * H) // same hour, later expiry
    s.deliveries.add(key(3), T + 2 * H, 12, T + 27 * H)
    expect(s.deliveries.firstSeen(key(1), T + 59 * 60_000, T)).toBe(10)
    await s.commit(12)
    expect(s.deliveries.firstSeen(key(2), T, T)).toBe(11)
    expect(s.deliveries.firstSeen(key(2), T + 2 * H, T)).toBeUndefined() // another hour: another bucket
    expect(s.deliveries.firstSeen('not-hex: hashed', T, T)).toBeUndefined()
    s.deliveries.add('not-hex: hashed', T, 13, T + 25 * H)
    await s.commit(13)
    expect(s.deliveries.firstSeen('not-hex: hashed', T, T)).toBe(13)
    expect(s.deliveries.stats()).toMatchObject({ keys: 4, buckets: 2 })

    // Past key 1's expiry but not key 2's: the hour stays whole.
    advanceWatermark(s, T + 25 * H + 1)
    sweepExpired(s)
    await s.commit(14)
    expect(s.deliveries.firstSeen(key(1), T, T)).toBe(10)
    advanceWatermark(s, T + 26 * H)
    sweepExpired(s)
    expect(s.deliveries.firstSeen(key(1), T, T)).toBeUndefined()
    expect(s.deliveries.firstSeen(key(3), T + 2 * H, T)).toBe(12)
    await s.commit(15)
    expect(s.deliveries.stats()).toMatchObject({ keys: 1, buckets: 1 })
    await s.close()
  })

  it('counts a key only for records that reached the edge within its own TTL, though a later key keeps its hour', async () => {
    const s = PartitionStore.open(fresh(), 0)
    s.deliveries.add(key(1), T, 10, T + 25 * H)
    s.deliveries.add(key(2), T + 1, 11, T + 40 * H)
    expect(s.deliveries.firstSeen(key(1), T, T + 25 * H)).toBe(10)
    expect(s.deliveries.firstSeen(key(1), T, T + 25 * H + 1000)).toBeUndefined()
    await s.commit(11)
    expect(s.deliveries.firstSeen(key(1), T, T + 25 * H)).toBe(10)
    expect(s.deliveries.firstSeen(key(1), T, T + 26 * H)).toBeUndefined()
    expect(s.deliveries.firstSeen(key(2), T, T + 26 * H)).toBe(11)
    await s.close()
  })

  it('travels through the changelog (deltas with an hour deleted, then a snapshot) to the same answers', async () => {
    let offset = 0
    const records: LogRecord[] = []
    const append = (rs: Array<{ key: string; value: string }>): void => {
      for (const r of rs) records.push({ topic: 'cl', partition: 0, offset: offset++, key: r.key, value: r.value, timestamp: 0 })
    }
    const a = PartitionStore.open(fresh(), 0)
    append([claimRecord(0, 'A')])
    const batch = async (max: number, f: () => void): Promise<void> => {
      f()
      append(deltaRecords(0, 'A', max, a.pendingEntries(max)))
      await a.commit(max)
    }
    await batch(1, () => {
      a.deliveries.add(key(1), T, 0, T + 25 * H)
      a.deliveries.add(key(2), T + 3 * H, 1, T + 28 * H)
      a.deliveries.add(key(5), T + 1, 2, T + 25 * H)
    })
    await batch(2, () => {
      advanceWatermark(a, T + 25 * H)
      sweepExpired(a) // hour T goes
    })
    await batch(3, () => a.deliveries.add(key(1), T, 3, T + 40 * H)) // seen again after its hour went

    const restoreInto = async (entries: Iterable<StateEntry>, applied: number): Promise<PartitionStore> => {
      const b = PartitionStore.open(fresh(), 0)
      await b.restore({ entries, applied, intent: undefined, changelog: { next: offset } })
      return b
    }
    const f = new ChangelogFold({ applied: -1, intent: undefined, position: { next: 0 } })
    for (const r of records) f.add(r)
    const b = await restoreInto(f.result().entries, f.result().applied)
    const snap = new ChangelogFold({ applied: -1, intent: undefined, position: { next: 0 } })
    let n = 5 // the changelog was truncated before its snapshot: the fold rebuilds from it
    for (const r of snapshotRecords(0, 'A', 3, b.entries())) snap.add({ topic: 'cl', partition: 0, offset: n++, key: r.key, value: r.value, timestamp: 0 })
    const c = await restoreInto(snap.result().entries, 3)
    for (const s of [a, b, c]) {
      expect(s.deliveries.firstSeen(key(1), T, T)).toBe(3)
      expect(s.deliveries.firstSeen(key(2), T + 3 * H, T)).toBe(1)
      expect(s.deliveries.firstSeen(key(5), T, T)).toBeUndefined() // went with its hour, not seen since
      expect(s.deliveries.stats()).toMatchObject({ keys: 2, buckets: 2 })
      expect(s.get('~wm')).toBe(T + 25 * H)
    }
    for (const s of [a, b, c]) await s.close()
  })

  it('refuses a state directory of the earlier layout instead of misreading it', async () => {
    const dir = fresh()
    const old = open({ path: dir, compression: false, encoding: 'msgpack' })
    await old.put('d:' + key(1), 7)
    await old.put('~applied', 7)
    await old.close()
    expect(() => PartitionStore.open(dir, 0)).toThrow(StateFormatError)
    // An empty directory is opened as the current layout, and stays openable.
    const d2 = fresh()
    await PartitionStore.open(d2, 0).close()
    await PartitionStore.open(d2, 0).close()
  })

  it('refuses a changelog written by the earlier layout', async () => {
    const s = PartitionStore.open(fresh(), 0)
    await expect(s.restore({ entries: [['d:' + key(1), 7]], applied: 7, intent: undefined, changelog: { next: 1 } })).rejects.toThrow(StateFormatError)
    await s.close()
  })
})
