import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { open } from 'lmdb'
import { decodeImpression, encodeImpression } from './impression-codec.js'
import type { ImpressionState } from './keys.js'
import { HOUR_SLOTS as IMPRESSION_SLOTS, PARTITION_MAX_DBS } from './hour-slots.js'
import { PartitionStore, STATE_FORMAT } from './partition-store.js'
import { tempDirs } from '../testing/temp-dirs.js'

const dirs = tempDirs('adc-imp-')
const fresh = (): string => dirs.make()
afterEach(() => dirs.removeAll())

const anyNumber = fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.double(), fc.constantFrom(-0, 0, 1.5, Number.MAX_SAFE_INTEGER))
const state: fc.Arbitrary<ImpressionState> = fc.record(
  {
    io: anyNumber,
    its: anyNumber,
    ich: fc.oneof(fc.constantFrom('web', 'app', 'ctv', 's2s', ''), fc.string({ maxLength: 40, unit: 'grapheme' })),
    co: anyNumber,
    il: anyNumber,
    cl: anyNumber,
    ex: anyNumber,
  },
  { requiredKeys: [], noNullPrototype: true },
)

describe('impression state codec', () => {
  it('reads back every state exactly as it was written: the same fields, the same values (-0, fractions, 2^53 - 1 included)', () => {
    fc.assert(
      fc.property(state, (s) => {
        const bytes = encodeImpression(s)
        expect(bytes).toBeInstanceOf(Buffer)
        expect(decodeImpression(bytes)).toStrictEqual(s)
      }),
      { numRuns: 500 },
    )
  })

  it('is smaller than its msgpack record: a new impression with its expiry in 35 bytes', () => {
    const s: ImpressionState = { io: 123_456_789, its: 1_796_000_000_000, ich: 'web', il: 1_796_000_000_500, ex: 1_796_090_000_500 }
    expect((encodeImpression(s) as Buffer).length).toBe(2 + 4 * 8 + 1 + 3)
  })

  it('keeps anything that is not such a state unchanged, and answers unknown values unchanged', () => {
    const others: unknown[] = [
      3,
      null,
      'x',
      [1, 2],
      { io: 1, other: 2 },
      { io: '1' },
      { ich: 7 },
      { ich: 'w'.repeat(256) },
      { ich: 'bad\ud800' }, // a lone surrogate UTF-8 cannot carry
      Buffer.from([1, 2, 3]),
    ]
    for (const v of others) {
      expect(encodeImpression(v)).toBe(v)
      expect(decodeImpression(v)).toBe(v)
    }
    // A msgpack record of an older build reads as it was.
    const legacy = { io: 5, its: 9, ich: 'web' }
    expect(decodeImpression(legacy)).toBe(legacy)
  })
})

describe('impression state in the partition store', () => {
  /** The impression index's rows as the environment holds them, over all its slot databases. */
  const rawIndex = (dir: string) => {
    const root = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3, maxDbs: PARTITION_MAX_DBS })
    const rows = Array.from({ length: IMPRESSION_SLOTS }, (_, i) => root.openDB<Buffer, Buffer>({ name: `~impressions.${i}`, keyEncoding: 'binary', encoding: 'binary', compression: false }))
      .flatMap((db, i) => [...db.getRange({})].map(({ key, value }) => ({ slot: i, key, value })))
    return { root, rows }
  }

  it('commits the compact bytes into the impression index and reads the state back, after a reopen and in snapshots', async () => {
    const dir = fresh()
    let s = PartitionStore.open(dir, 0)
    const st: ImpressionState = { io: 7, its: 1000, ich: 'app', il: 2000, ex: 3000 }
    s.put('i:a', st)
    expect(s.get('i:a')).toBe(st) // the batch's own write, as it was put
    await s.commit(7)
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.get('i:a')).toStrictEqual(st)
    expect([...s.entries()].filter(([k]) => k.startsWith('i:'))).toStrictEqual([['i:a', st]])
    // Impression states are held by hour, not in key order: a range over them is refused, not answered short.
    expect(() => s.range('i:', 'i:~', 10)).toThrow(/impression states/)
    await s.close()
    // On disk: the codec's bytes under [expiry hour][0xf0 + its tenth][name], none in the main database.
    const { root, rows } = rawIndex(dir)
    expect(root.get('i:a')).toBeUndefined()
    expect(rows.map(({ slot, key }) => [slot, key.readUInt32BE(0), key[4], key.toString('latin1', 5)])).toEqual([[0, 0, 0xf0, 'a']])
    expect(rows[0]!.value.length).toBe(2 + 4 * 8 + 1 + 3)
    await root.close()
  })

  it('moves states a format-4 build wrote (msgpack records and compact bytes) into the index, off the minute schedule', async () => {
    const dir = fresh()
    const H = 3_600_000
    const T = Date.UTC(2026, 10, 23, 12)
    const raw = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3 })
    await raw.put('~format', 4)
    await raw.put('~wm', T)
    await raw.put('i:old', { io: 3, its: 10, ich: 'web', il: 11, ex: T + 5 * H })
    await raw.put('i:compact', encodeImpression({ io: 4, il: 12, ex: T + 7 * H }))
    await raw.put('i:noex', { io: 5 }) // no expiry: the hour of the schedule minute that lists it
    const minute = Math.floor((T + 9 * H) / 60_000)
    await raw.put(`x:${String(minute).padStart(10, '0')}:000000000000001`, ['i:old', 'i:noex', 'w:other'].join('\n'))
    await raw.put(`x:${String(minute + 1).padStart(10, '0')}:000000000000002`, 'i:compact')
    await raw.close()
    let s = PartitionStore.open(dir, 0)
    expect(s.get('i:old')).toStrictEqual({ io: 3, its: 10, ich: 'web', il: 11, ex: T + 5 * H })
    expect(s.get('i:compact')).toStrictEqual({ io: 4, il: 12, ex: T + 7 * H })
    expect(s.get('i:noex')).toStrictEqual({ io: 5 })
    s.put('i:old', { ...s.get<ImpressionState>('i:old'), co: 4, cl: 13 })
    await s.commit(4)
    expect(s.get('i:old')).toStrictEqual({ io: 3, its: 10, ich: 'web', il: 11, ex: T + 5 * H, co: 4, cl: 13 })
    // The schedule keeps only what is not an impression state.
    expect(s.range('x:', 'x:~', 10).map(([, v]) => v)).toEqual(['w:other'])
    await s.close()
    const { root, rows } = rawIndex(dir)
    expect(root.get('~format')).toBe(STATE_FORMAT)
    expect([...root.getKeys({ start: 'i:', end: 'i:~' })]).toEqual([])
    for (const { slot, key } of rows) expect(slot).toBe(key.readUInt32BE(0) % IMPRESSION_SLOTS)
    // Hour and tenth: a state without an expiry goes to the last tenth of its hour.
    const hours = new Map(rows.map(({ key }) => [key.toString('latin1', 5), [key.readUInt32BE(0) - Math.floor(T / H), key[4]! - 0xf0]]))
    expect(Object.fromEntries(hours)).toEqual({ old: [5, 0], compact: [7, 0], noex: [9, 5] })
    await root.close()
    s = PartitionStore.open(dir, 0) // opened again: nothing left to move
    expect(s.get('i:noex')).toStrictEqual({ io: 5 })
    await s.close()
  })

  it('a restore from the changelog writes the compact form too, and other values under i: keys stay as they were', async () => {
    const dir = fresh()
    const s = PartitionStore.open(dir, 0)
    await s.restore({ entries: [['i:r', { io: 1, co: 2 }], ['i:n', 3]], applied: 2, intent: undefined, changelog: { next: 1 } })
    expect(s.get('i:r')).toStrictEqual({ io: 1, co: 2 })
    expect(s.get('i:n')).toBe(3)
    await s.close()
    const { root, rows } = rawIndex(dir)
    const values = new Map(rows.map(({ key, value }) => [key.toString('latin1', 5), value]))
    expect(values.get('r')![0]).toBe(0xa1)
    expect(values.get('n')![0]).toBe(0xa2) // not a state: kept in V8's serialization
    await root.close()
  })
})
