import { describe, expect, it } from 'vitest'
import type { LogRecord } from '../log/log.js'
import { ChangelogFold, claimedByOther, claimRecord, deltaRecords, intentRecord, snapshotRecords } from './changelog.js'
import { ENTRY_FORMAT, StateFormatError } from './partition-store.js'

let offset = 0
const at = (r: { key: string; value: string }): LogRecord => ({ topic: 'cl', partition: 0, offset: offset++, key: r.key, value: r.value, timestamp: 0 })
const fold = (records: LogRecord[]) => {
  const f = new ChangelogFold({ applied: -1, intent: undefined, position: { next: 0 } })
  for (const r of records) f.add(r)
  const res = f.result()
  return { ...res, entries: Object.fromEntries([...res.entries].map((e) => [e[0], e.length === 1 ? '<deleted>' : e[1]])) }
}

describe('changelog fold', () => {
  it("names its state format in parts and snapshots, and refuses a later format's records instead of misreading them", () => {
    offset = 0
    const parts = deltaRecords(0, 'A', 9, [['d:1', 3]])
    expect(JSON.parse(parts[0]!.value)).toMatchObject({ t: 'part', f: ENTRY_FORMAT })
    expect(JSON.parse(snapshotRecords(0, 'A', 9, [['d:1', 3]])[0]!.value)).toMatchObject({ t: 'snap', f: ENTRY_FORMAT })
    // Records of this format and of builds before the marker (no `f`) fold as before.
    const legacy = { key: 'p0', value: JSON.stringify({ t: 'part', o: 'A', max: 19, i: 0, e: [['d:2', 4]] }) }
    expect(fold([at(claimRecord(0, 'A')), ...parts.map(at), at(legacy), at({ key: 'p0', value: JSON.stringify({ t: 'delta', o: 'A', max: 19, n: 1 }) })]).entries).toEqual({ 'd:1': 3, 'd:2': 4 })
    const later = { key: 'p0', value: JSON.stringify({ t: 'part', o: 'A', max: 29, i: 0, e: [['z:1', 1]], f: ENTRY_FORMAT + 1 }) }
    offset = 0
    expect(() => fold([at(claimRecord(0, 'A')), at(later)])).toThrow(StateFormatError)
  })

  it('applies deltas in order, keeps the last pending intent, and drops parts without their delta', () => {
    offset = 0
    const out = fold([
      at(claimRecord(0, 'A')),
      at(intentRecord(0, 'A', { minOffset: 0, maxOffset: 9 })),
      ...deltaRecords(0, 'A', 9, [['d:1', 3], ['i:x', { io: 3 }]]).map(at),
      at(intentRecord(0, 'A', { minOffset: 10, maxOffset: 19 })),
      ...deltaRecords(0, 'A', 19, [['d:1'], ['d:2', 12]]).slice(0, 1).map(at), // died mid-append: no delta record
      at(intentRecord(0, 'A', { minOffset: 10, maxOffset: 19 })),
    ])
    expect(out.applied).toBe(9)
    expect(out.intent).toEqual({ minOffset: 10, maxOffset: 19 })
    expect(out.entries).toEqual({ 'd:1': 3, 'i:x': { io: 3 } })
    expect(out.changelog).toEqual({ next: offset, owner: 'A' })
  })

  it('splits large deltas into parts that only count together', () => {
    offset = 0
    const entries: Array<[string, unknown]> = Array.from({ length: 500 }, (_, i) => [`d:${i}`, 'x'.repeat(100)])
    const recs = deltaRecords(0, 'A', 9, entries, 4096)
    expect(recs.length).toBeGreaterThan(10)
    expect(fold([at(claimRecord(0, 'A')), ...recs.map(at)]).applied).toBe(9)
    offset = 0
    expect(fold([at(claimRecord(0, 'A')), ...recs.filter((_, i) => i !== 3).map(at)]).applied).toBe(-1)
  })

  it('fences: records of an earlier owner after a new claim are ignored, and the new owner sees the claim', () => {
    offset = 0
    const records = [
      at(claimRecord(0, 'A')),
      at(intentRecord(0, 'A', { minOffset: 0, maxOffset: 9 })),
      at(claimRecord(0, 'B')), // B takes over while A is still finishing its batch
      ...deltaRecords(0, 'A', 9, [['d:1', 'from A']]).map(at), // A's late delta: ignored
      at(intentRecord(0, 'A', { minOffset: 10, maxOffset: 19 })), // A's next batch: ignored
      ...deltaRecords(0, 'B', 9, [['d:1', 3]]).map(at), // B replays A's pending range
    ]
    const out = fold(records)
    expect(out.applied).toBe(9)
    expect(out.intent).toBeUndefined()
    expect(out.entries).toEqual({ 'd:1': 3 })
    expect(out.changelog.owner).toBe('B')
    expect(claimedByOther(records.slice(3), 'A')).toBe(false)
    expect(claimedByOther(records.slice(1), 'A')).toBe(true)
    // Without B's claim, A's records would have counted: the claim is what fences them.
    offset = 0
    expect(fold([records[0]!, records[1]!, ...deltaRecords(0, 'A', 9, [['d:1', 'from A']]).map(at)]).entries).toEqual({ 'd:1': 'from A' })
  })

  it('ignores deltas and intents at or below applied (a replayed range committed twice)', () => {
    offset = 0
    const out = fold([
      at(claimRecord(0, 'A')),
      ...deltaRecords(0, 'A', 19, [['k', 2]]).map(at),
      ...deltaRecords(0, 'A', 9, [['k', 1]]).map(at),
      at(intentRecord(0, 'A', { minOffset: 10, maxOffset: 19 })),
    ])
    expect(out).toMatchObject({ applied: 19, intent: undefined, entries: { k: 2 } })
  })

  it('a store behind a truncation rebuilds from the snapshot the changelog starts with; others skip snapshots', () => {
    offset = 40 // records 0..39 were truncated away
    const records = [
      ...snapshotRecords(0, 'A', 29, [['k', 1], ['j', 2]], 8).map(at),
      ...deltaRecords(0, 'A', 39, [['k', 3]]).map(at),
      at(claimRecord(0, 'B')),
    ]
    const fresh = new ChangelogFold({ applied: -1, intent: undefined, position: { next: 0 } })
    for (const r of records) fresh.add(r)
    const res = fresh.result()
    expect(res.reset).toBe(true)
    expect(Object.fromEntries([...res.entries].map((e) => [e[0], e[1]]))).toEqual({ k: 3, j: 2 })
    expect(res).toMatchObject({ applied: 39, changelog: { next: offset, owner: 'B' } })
    // A store already at offset 40 folds on without the snapshot.
    const current = new ChangelogFold({ applied: 29, intent: undefined, position: { next: 40, owner: 'A' } })
    for (const r of records) current.add(r)
    expect(current.result()).toMatchObject({ reset: false, applied: 39 })
    expect([...current.result().entries]).toEqual([['k', 3]])
    // Truncated without a snapshot at the start: refused (the partition is not delivered).
    const broken = new ChangelogFold({ applied: -1, intent: undefined, position: { next: 0 } })
    expect(() => broken.add(records[records.length - 1]!)).toThrow(/no snapshot/)
  })
})
