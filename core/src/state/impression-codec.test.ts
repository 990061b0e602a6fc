import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { open } from 'lmdb'
import { decodeImpression, encodeImpression } from './impression-codec.js'
import type { ImpressionState } from './keys.js'
import { PartitionStore } from './partition-store.js'
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
  it('commits the compact bytes and reads the state back, after a reopen, in ranges and in snapshots', async () => {
    const dir = fresh()
    let s = PartitionStore.open(dir, 0)
    const st: ImpressionState = { io: 7, its: 1000, ich: 'app', il: 2000, ex: 3000 }
    s.put('i:a', st)
    expect(s.get('i:a')).toBe(st) // the batch's own write, as it was put
    await s.commit(7)
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.get('i:a')).toStrictEqual(st)
    expect(s.range('i:', 'i:~', 10)).toStrictEqual([['i:a', st]])
    expect([...s.entries()].filter(([k]) => k.startsWith('i:'))).toStrictEqual([['i:a', st]])
    await s.close()
    // On disk: the codec's bytes, not a msgpack map.
    const raw = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3 })
    const stored = raw.get('i:a') as Uint8Array
    expect(stored).toBeInstanceOf(Uint8Array)
    expect(stored.length).toBe(2 + 4 * 8 + 1 + 3)
    await raw.close()
  })

  it('reads states an older build wrote as msgpack records, and rewrites them compactly when they change', async () => {
    const dir = fresh()
    let s = PartitionStore.open(dir, 0) // a current store (format marker written)
    await s.close()
    const raw = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3 })
    await raw.put('i:old', { io: 3, its: 10, ich: 'web', il: 11, ex: 12 })
    await raw.close()
    s = PartitionStore.open(dir, 0)
    expect(s.get('i:old')).toStrictEqual({ io: 3, its: 10, ich: 'web', il: 11, ex: 12 })
    s.put('i:old', { ...s.get<ImpressionState>('i:old'), co: 4, cl: 13 })
    await s.commit(4)
    expect(s.get('i:old')).toStrictEqual({ io: 3, its: 10, ich: 'web', il: 11, ex: 12, co: 4, cl: 13 })
    await s.close()
  })

  it('a restore from the changelog writes the compact form too, and other values under i: keys stay as they were', async () => {
    const dir = fresh()
    const s = PartitionStore.open(dir, 0)
    await s.restore({ entries: [['i:r', { io: 1, co: 2 }], ['i:n', 3]], applied: 2, intent: undefined, changelog: { next: 1 } })
    expect(s.get('i:r')).toStrictEqual({ io: 1, co: 2 })
    expect(s.get('i:n')).toBe(3)
    await s.close()
    const raw = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3 })
    expect(raw.get('i:r')).toBeInstanceOf(Uint8Array)
    expect(raw.get('i:n')).toBe(3)
    await raw.close()
  })
})
