import { afterEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { open, type Database, type RootDatabase } from 'lmdb'
import { HOUR_SLOTS, PARTITION_MAX_DBS } from './hour-slots.js'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { eventIdTimeMs } from '@adc/schemas'
import { deliveryTimeOf, hourOf, NO_TIME_BUCKET } from './delivery-index.js'
import { advanceWatermark, sweepExpired } from './expiry.js'
import { changelogReplay } from '../testing/changelog-replay.js'
import { PartitionStore, STATE_FORMAT, StateFormatError, type StateEntry } from './partition-store.js'
import { pad } from './keys.js'
import { STATE_TTL_MS } from '../rules/rules.js'
import { createDedupeStep } from '../pipeline/steps/dedupe-step.js'
import type { Decoded } from '../pipeline/types.js'
import { decoded } from '../testing/records.js'
import { tempDirs } from '../testing/temp-dirs.js'

const dirs = tempDirs('adc-deliveries-')
/** The delivery index's databases as an environment holds them: the main one, then its hour slots. */
const rawDeliveryDbs = (root: RootDatabase): Array<Database<Buffer, Buffer>> =>
  ['~deliveries', ...Array.from({ length: HOUR_SLOTS }, (_, i) => `~deliveries.${i}`)].map((name) => root.openDB<Buffer, Buffer>({ name, keyEncoding: 'binary', encoding: 'binary', compression: false }))
const fresh = (): string => dirs.make()
afterEach(() => dirs.removeAll())

const H = 3_600_000
const T = Date.UTC(2026, 10, 23, 8, 0, 0)
const key = (n: number): string => n.toString(16).padStart(8, '0') + 'ab'.repeat(12) // distinct in the first 96 bits

describe('delivery index', () => {
  it("starts a new hour's filter empty, sized by the fullest hour, so it never reads the hour's keys back as it grows", async () => {
    const s = PartitionStore.open(fresh(), 0)
    const perBatch = 10_000
    const batches = 6 // 60k keys an hour: past a filter's smallest capacity (16k) several times over
    let offset = 0
    const hourKey = (h: number, n: number): string => createHash('sha256').update(`${h}:${n}`).digest('hex').slice(0, 32)
    for (const h of [0, 1]) {
      const before = s.deliveries.filterBuilds()
      for (let b = 0; b < batches; b++) {
        for (let i = 0; i < perBatch; i++) {
          const k = hourKey(h, b * perBatch + i)
          // Each batch asks first, as the dedupe step does: none of these keys was seen.
          expect(s.deliveries.firstSeen(k, T + h * H, T + h * H)).toBeUndefined()
          s.deliveries.add(k, T + h * H, ++offset, T + (h + 25) * H, T + h * H)
        }
        await s.commit(offset)
      }
      // The first hour's filter is read back as it outgrows its start; the second's is sized by it.
      if (h === 1) expect(s.deliveries.filterBuilds() - before).toBe(0)
      else expect(s.deliveries.filterBuilds() - before).toBeGreaterThan(0)
    }
    for (const h of [0, 1]) for (let n = 0; n < batches * perBatch; n += 97) expect(s.deliveries.firstSeen(hourKey(h, n), T + h * H, T + h * H)).toBeDefined()
    await s.close()
  })

  it("sizes only the live hours' filters by the fullest hour: a key of an hour far from it (a client clock off by days) gets a small filter", async () => {
    const s = PartitionStore.open(fresh(), 0)
    let offset = 0
    const hourKey = (h: number, n: number): string => createHash('sha256').update(`${h}:${n}`).digest('hex').slice(0, 32)
    // The live hour: 60k keys.
    for (let b = 0; b < 6; b++) {
      for (let i = 0; i < 10_000; i++) {
        const k = hourKey(0, b * 10_000 + i)
        expect(s.deliveries.firstSeen(k, T, T)).toBeUndefined()
        s.deliveries.add(k, T, ++offset, T + 25 * H, T)
      }
      await s.commit(offset)
    }
    const live = s.deliveries.filterBytes(hourOf(T))
    expect(live).toBeGreaterThan(0)
    // One event each of 40 hours days or months off (event ids made on devices with a wrong clock,
    // or sent so on purpose): every such hour's filter would be as large as the live hour's.
    const far = Array.from({ length: 40 }, (_, i) => T - (100 + 37 * i) * H)
    for (const t of far) {
      expect(s.deliveries.firstSeen(hourKey(t, 0), t, T)).toBeUndefined()
      s.deliveries.add(hourKey(t, 0), t, ++offset, T + 25 * H, T)
    }
    await s.commit(offset)
    for (const t of far) expect(s.deliveries.firstSeen(hourKey(t, 0), t, T)).toBe(offset - far.length + far.indexOf(t) + 1)
    const farBytes = far.reduce((n, t) => n + s.deliveries.filterBytes(hourOf(t)), 0)
    // At the smallest capacity (16k keys, about 16 KiB each), not the live hour's size each.
    expect(farBytes).toBeLessThan(far.length * 24 * 1024)
    expect(farBytes).toBeLessThan(live * 10)
    // The next hour is still sized by the live one, and never read back from the database.
    const builds = s.deliveries.filterBuilds()
    for (let b = 0; b < 6; b++) {
      for (let i = 0; i < 10_000; i++) {
        const k = hourKey(1, b * 10_000 + i)
        expect(s.deliveries.firstSeen(k, T + H, T + H)).toBeUndefined()
        s.deliveries.add(k, T + H, ++offset, T + 26 * H, T + H)
      }
      await s.commit(offset)
    }
    expect(s.deliveries.filterBuilds() - builds).toBe(0)
    await s.close()
  })

  it('files a 32-character lower-case hex key under its first 96 bits, any other key under the first 96 bits of its SHA-256', async () => {
    const s = PartitionStore.open(fresh(), 0)
    const hex = '0123456789abcdef'.repeat(2)
    const others = ['0123456789ABCDEF'.repeat(2), '0123456789abcdeg'.repeat(2), 'z'.repeat(32), hex.slice(0, 31), `${hex}0`, '0123456789abcde\u0660'.repeat(2)]
    s.deliveries.add(hex, T, 1, T + 25 * H)
    others.forEach((k, i) => s.deliveries.add(k, T, 2 + i, T + 25 * H))
    const hour = hourOf(T)
    const expected = [[hex, hex.slice(0, 24)], ...others.map((k) => [k, createHash('sha256').update(k).digest('hex').slice(0, 24)])]
    const pending = new Map(s.deliveries.pendingEntries().map((e) => [e[0], e[1]]))
    expected.forEach(([, bits], i) => expect((pending.get(`D:${hour}:${bits}`) as number[] | undefined)?.[0]).toBe(1 + i))
    await s.commit(10)
    expected.forEach(([k], i) => expect(s.deliveries.firstSeen(k!, T, T)).toBe(1 + i))
    await s.close()
  })

  it('finds keys by event-id hour across commits, and expires a whole hour once the watermark passes its last key', async () => {
    const s = PartitionStore.open(fresh(), 0)
    s.deliveries.add(key(1), T, 10, T + 25 * H)
    s.deliveries.add(key(2), T + 10 * 60_000, 11, T + 26 * H) // same hour, later expiry
    s.deliveries.add(key(3), T + 2 * H, 12, T + 27 * H)
    expect(s.deliveries.firstSeen(key(1), T + 59 * 60_000, T)).toBe(10)
    await s.commit(12)
    // A key's event-id time is a function of its own input (the event id), so it is always asked with it.
    expect(s.deliveries.firstSeen(key(2), T + 10 * 60_000, T)).toBe(11)
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

  it('judges a re-delivery against the latest sighting within the dedupe horizon, through a commit and the changelog; an entry without it counts until its expiry', async () => {
    const s = PartitionStore.open(fresh(), 0)
    s.deliveries.add(key(1), T, 10, T + 25 * H, T)
    expect(s.deliveries.firstSeen(key(1), T, T + 24 * H)).toBe(10)
    expect(s.deliveries.firstSeen(key(1), T, T + 24 * H + 1)).toBeUndefined()
    s.deliveries.resighted(key(1), T, T + 20 * H, T + 45 * H)
    await s.commit(11)
    expect(s.deliveries.firstSeen(key(1), T, T + 44 * H)).toBe(10)
    expect(s.deliveries.firstSeen(key(1), T, T + 44 * H + 1)).toBeUndefined()
    const entries = [...s.deliveries.entries()]
    await s.close()
    const r = PartitionStore.open(fresh(), 0)
    await r.restore({ entries, applied: 11, intent: undefined, changelog: { next: 0 } })
    expect(r.deliveries.firstSeen(key(1), T, T + 44 * H)).toBe(10)
    expect(r.deliveries.firstSeen(key(1), T, T + 44 * H + 1)).toBeUndefined()
    // An entry of an earlier build: [offset, expiry s], no latest sighting.
    await r.restore({ entries: [[`D:${Math.floor(T / H)}:${key(2).slice(0, 24)}`, [12, (T + 25 * H) / 1000]], [`D:${Math.floor(T / H)}`, T + 25 * H]], applied: 12, intent: undefined, changelog: { next: 0 } })
    expect(r.deliveries.firstSeen(key(2), T, T + 25 * H)).toBe(12)
    expect(r.deliveries.firstSeen(key(2), T, T + 25 * H + 1000)).toBeUndefined()
    await r.close()
  })

  it('stores 12 bytes for a key whose expiry is the default lifetime after its latest sighting, 16 for any other; both give the same answers, through the changelog', async () => {
    const dir = fresh()
    const s = PartitionStore.open(dir, 0)
    s.deliveries.add(key(1), T, 10, T + STATE_TTL_MS, T) // the dedupe step's default
    s.deliveries.add(key(2), T, 11, T + 30 * H, T) // another lifetime
    s.deliveries.resighted(key(1), T, T + 2 * H + 7, T + 2 * H + 7 + STATE_TTL_MS) // the horizon slides, still the default
    await s.commit(11)
    const answers = (x: PartitionStore): Array<number | undefined> => [
      x.deliveries.firstSeen(key(1), T, T + 26 * H + 7),
      x.deliveries.firstSeen(key(1), T, T + 26 * H + 8),
      x.deliveries.firstSeen(key(2), T, T + 24 * H),
      x.deliveries.firstSeen(key(2), T, T + 24 * H + 1),
    ]
    expect(answers(s)).toEqual([10, undefined, 11, undefined])
    const entries = [...s.deliveries.entries()]
    // The fourth element: the second of the event id's time within its hour.
    expect(entries).toContainEqual([`D:${Math.floor(T / H)}:${key(1).slice(0, 24)}`, [10, Math.floor((T + 2 * H + 7 + STATE_TTL_MS) / 1000), T + 2 * H + 7, 0]])
    await s.close()
    const root = open({ path: dir, compression: false, encoding: 'msgpack', maxDbs: PARTITION_MAX_DBS })
    const lengths = rawDeliveryDbs(root).flatMap((db) => [...db.getRange({})]).filter(({ key: k }) => k.length === 18).map(({ value }) => value.length)
    expect(lengths.sort()).toEqual([12, 16])
    // Format 4 and later mark it, so that a build of format 3 (which would misread a 12-byte value) refuses it.
    expect(STATE_FORMAT).toBeGreaterThanOrEqual(4)
    expect(root.get('~format')).toBe(STATE_FORMAT)
    await root.put('~format', 3) // a format-3 store is read as it is
    await root.close()
    const r = PartitionStore.open(dir, 0)
    expect(answers(r)).toEqual([10, undefined, 11, undefined])
    const t = PartitionStore.open(fresh(), 0)
    await t.restore({ entries, applied: 11, intent: undefined, changelog: { next: 0 } })
    expect(answers(t)).toEqual([10, undefined, 11, undefined])
    expect([...t.deliveries.entries()]).toEqual(entries)
    await r.close()
    await t.close()
  })

  it('travels through the changelog (deltas with an hour deleted, then a snapshot) to the same answers', async () => {
    const a = PartitionStore.open(fresh(), 0)
    const { batch, rebuilt } = changelogReplay(a)
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

    // The changelog is truncated before its snapshot: the second copy rebuilds from it alone.
    const [b, c] = await rebuilt(fresh)
    for (const s of [a, b, c]) {
      expect(s.deliveries.firstSeen(key(1), T, T)).toBe(3)
      expect(s.deliveries.firstSeen(key(2), T + 3 * H, T)).toBe(1)
      expect(s.deliveries.firstSeen(key(5), T, T)).toBeUndefined() // went with its hour, not seen since
      expect(s.deliveries.stats()).toMatchObject({ keys: 2, buckets: 2 })
      expect(s.get('~wm')).toBe(T + 25 * H)
    }
    for (const s of [a, b, c]) await s.close()
  })

  // With a latest sighting, as the dedupe step adds every key (a 12-byte value), and without (16 bytes).
  for (const sighted of [true, false]) it(`keeps event ids without a plausible time (token-derived) in one bucket whose expired keys are removed while it lives on${sighted ? '' : ', keys without a latest sighting'}`, async () => {
    const s = PartitionStore.open(fresh(), 0)
    // A token-derived id's "time" is hash bits: anywhere in 48 bits of ms. Such keys share one bucket.
    const far = Date.UTC(5000, 0, 1)
    expect(hourOf(far)).toBe(NO_TIME_BUCKET)
    expect(hourOf(0)).toBe(NO_TIME_BUCKET)
    expect(hourOf(undefined)).toBe(NO_TIME_BUCKET)
    expect(hourOf(T)).not.toBe(NO_TIME_BUCKET)
    let offset = 0
    const batch = async (receivedAt: number, keys: number[]): Promise<void> => {
      for (const k of keys) if (s.deliveries.firstSeen(key(k), far, receivedAt) === undefined) s.deliveries.add(key(k), far, offset++, receivedAt + 25 * H, sighted ? receivedAt : undefined)
      advanceWatermark(s, receivedAt)
      sweepExpired(s)
      await s.commit(offset)
    }
    await batch(T, [1, 2, 3])
    await batch(T + 2 * H, [4])
    expect(s.deliveries.firstSeen(key(1), far, T + 20 * H)).toBe(0)
    expect(s.deliveries.firstSeen(key(4), far, T + 26 * H)).toBe(3)
    // Traffic goes on: the bucket's latest expiry keeps moving, yet keys past their own expiry go.
    for (let h = 26; h <= 30; h++) await batch(T + h * H, [100 + h])
    expect(s.deliveries.stats()).toMatchObject({ keys: 5, buckets: 1 })
    expect(s.deliveries.firstSeen(key(1), far, T)).toBeUndefined()
    expect(s.deliveries.firstSeen(key(130), far, T + 31 * H)).toBe(8)
    // The removals travel through the changelog as the store made them.
    const t = PartitionStore.open(fresh(), 0)
    await t.restore({ entries: [...s.entries()], applied: offset, intent: undefined, changelog: { next: 1 }, reset: true })
    expect(t.deliveries.stats()).toMatchObject({ keys: 5, buckets: 1 })
    await s.close()
    await t.close()
  })

  it('refuses a state directory of an unknown later format instead of misreading it', async () => {
    const dir = fresh()
    const later = open({ path: dir, compression: false, encoding: 'msgpack' })
    await later.put('~format', STATE_FORMAT + 1)
    await later.close()
    expect(() => PartitionStore.open(dir, 0)).toThrow(StateFormatError)
    // An empty directory is opened as the current layout, and stays openable.
    const d2 = fresh()
    await PartitionStore.open(d2, 0).close()
    await PartitionStore.open(d2, 0).close()
  })
})

describe('deliveryTimeOf', () => {
  it('answers what eventIdTimeMs answers, for ULIDs of either case, UUIDv7s and ids without a time', () => {
    const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz'
    const ulidArb = fc.array(fc.constantFrom(...crockford.split('')), { minLength: 26, maxLength: 26 }).map((a) => a.join(''))
    const otherArb = fc.oneof(fc.string({ minLength: 26, maxLength: 26 }), fc.uuid().map((u) => u.slice(0, 14) + '7' + u.slice(15)), fc.string())
    fc.assert(fc.property(fc.oneof(ulidArb, otherArb), (id) => {
      expect(deliveryTimeOf(id)).toBe(eventIdTimeMs(id))
    }), { numRuns: 2000 })
    expect(deliveryTimeOf('01JD000000ILOU000000000000')).toBeUndefined()
  })
})

describe('format 1 upgrade', () => {
  const TTL = 25 * H
  const r1 = T
  const r2 = T + 2 * H
  const first = decoded({ type: 'impression', n: 501, impressionId: 'imp_u1', ts: r1 - 1000, receivedAt: r1 }, 5)
  const second = decoded({ type: 'click', n: 502, impressionId: 'imp_u1', ts: r2 - 1000, receivedAt: r2 }, 6)
  const minuteOf = (ms: number): number => Math.floor(ms / 60_000)
  const counter = `b:ip:203.0.113.0/24:${minuteOf(r2)}`
  /**
   * The entries of a format-1 store as its code wrote them: `d:<key>` → first-seen offset, scheduled
   * for deletion in the minute of receivedAt + TTL (`x:<minute>:<batch max offset>` → the keys joined
   * by newlines, alongside the impression key), IVT counters `b:<kind>:<value>:<minute>` → count,
   * scheduled two minutes after their minute.
   */
  const format1Entries = (): StateEntry[] => [
    [`d:${first.envelope.key}`, 5],
    [`d:${second.envelope.key}`, 6],
    ['i:imp_u1', { io: 5, its: r1 - 1000, ich: 'web', il: r1, co: 6, cl: r2, ex: r2 + TTL }],
    [`x:${pad(minuteOf(r1 + TTL), 10)}:${pad(5)}`, [`d:${first.envelope.key}`, 'i:imp_u1'].join('\n')],
    [`x:${pad(minuteOf(r2 + TTL), 10)}:${pad(6)}`, [`d:${second.envelope.key}`, 'i:imp_u1'].join('\n')],
    [counter, 3],
    [`x:${pad(minuteOf(r2) + 2, 10)}:${pad(6)}`, counter],
    ['~wm', r2],
  ]
  const again = (d: Decoded, offset: number, receivedAt: number): Decoded => ({ ...d, ref: { ...d.ref, offset }, envelope: { ...d.envelope, receivedAt } })

  async function expectUpgraded(s: PartitionStore): Promise<void> {
    const dedupe = createDedupeStep({ store: s })
    expect(s.countPrefix('d:')).toBe(0)
    expect(s.countPrefix('b:')).toBe(0)
    for (const [, v] of s.range<string>('x:', 'x:\uffff', 100)) expect(v).not.toMatch(/(^|\n)[db]:/)
    expect(s.bursts.count('ip', '203.0.113.0/24', minuteOf(r2), false)).toBe(3)
    // Within the TTL of their first sighting, whatever their event-id hour: duplicate_delivery.
    expect(await dedupe(again(first, 20, r1 + 3 * H))).toMatchObject({ kind: 'unbilled', reason: 'duplicate_delivery', value: { firstSeenOffset: 5 } })
    expect(await dedupe(again(second, 21, r2 + 24 * H))).toMatchObject({ kind: 'unbilled', reason: 'duplicate_delivery', value: { firstSeenOffset: 6 } })
    expect(await dedupe(again(first, 6 - 1, r1))).toMatchObject({ kind: 'ok' }) // its own offset: the first sighting itself
    s.discard()
    // After the TTL: forgotten (the first key by its own expiry, before the bucket goes).
    expect(s.deliveries.firstSeen(first.envelope.key, undefined, r1 + TTL)).toBe(5)
    expect(s.deliveries.firstSeen(first.envelope.key, undefined, (minuteOf(r1 + TTL) + 1) * 60_000)).toBeUndefined()
    advanceWatermark(s, r2 + TTL + 2 * 60_000)
    sweepExpired(s)
    await s.commit(30)
    expect(s.deliveries.stats()).toMatchObject({ keys: 0, buckets: 0 })
    expect(s.deliveries.firstSeen(second.envelope.key, undefined, r2 + H)).toBeUndefined()
    expect((await dedupe(again(second, 31, r2 + TTL + 3 * 60_000))).kind).not.toBe('unbilled')
  }

  it('opens a format-1 state directory by moving its delivery keys (legacy bucket) and counters to the binary layout', async () => {
    const dir = fresh()
    const old = open({ path: dir, compression: false, encoding: 'msgpack' })
    await old.transaction(() => {
      for (const [k, v] of format1Entries()) void old.put(k, v)
      void old.put('~applied', 6)
    })
    await old.close()
    const s = PartitionStore.open(dir, 0)
    expect(s.appliedOffset()).toBe(6)
    expect(s.deliveries.stats()).toMatchObject({ keys: 2, buckets: 1 })
    await s.close()
    // Reopened: format 2 now, the legacy bucket still there.
    const s2 = PartitionStore.open(dir, 0)
    expect(s2.deliveries.firstSeen(second.envelope.key, undefined, r2)).toBe(6)
    await expectUpgraded(s2)
    await s2.close()
  })

  it('restores a format-1 changelog into the binary layout', async () => {
    const s = PartitionStore.open(fresh(), 0)
    await s.restore({ entries: format1Entries(), applied: 6, intent: undefined, changelog: { next: 9 } })
    expect(s.deliveries.stats()).toMatchObject({ keys: 2, buckets: 1 })
    // Its snapshot travels in the binary layout, and restores elsewhere.
    const t = PartitionStore.open(fresh(), 0)
    await t.restore({ entries: [...s.entries()], applied: 6, intent: undefined, changelog: { next: 9 }, reset: true })
    await expectUpgraded(s)
    await expectUpgraded(t)
    await s.close()
    await t.close()
  })
})

describe('delivery index hour slots', () => {
  it('moves the keys a format-4 store kept in one database into their hour slots, with the same answers', async () => {
    const dir = fresh()
    let s = PartitionStore.open(dir, 0)
    s.deliveries.add(key(1), T, 5, T + 25 * H, T)
    s.deliveries.add(key(2), T + 40 * H, 6, T + 25 * H, T)
    s.deliveries.add(key(3), undefined, 7, T + 25 * H, T) // no time: the main database's own bucket
    await s.commit(7)
    const answers = (x: PartitionStore) => [x.deliveries.firstSeen(key(1), T, T + 1), x.deliveries.firstSeen(key(2), T + 40 * H, T + 1), x.deliveries.firstSeen(key(3), undefined, T + 1), x.deliveries.firstSeen(key(4), T, T + 1)]
    expect(answers(s)).toEqual([5, 6, 7, undefined])
    await s.close()
    // Back to format 4's layout: every key in the main database, 16 bytes (no second).
    let root = open({ path: dir, compression: false, encoding: 'msgpack', maxDbs: PARTITION_MAX_DBS })
    const [main, ...slots] = rawDeliveryDbs(root)
    await root.transaction(() => {
      for (const slot of slots) for (const { key: k, value } of slot.getRange({})) {
        void main!.put(Buffer.concat([k.subarray(0, 4), k.subarray(6)]), Buffer.from(value))
        void slot.remove(Buffer.from(k))
      }
      void root.put('~format', 4)
    })
    expect([...main!.getKeys({})].filter((k) => k.length === 16)).toHaveLength(3)
    await root.close()
    s = PartitionStore.open(dir, 0)
    expect(answers(s)).toEqual([5, 6, 7, undefined])
    expect(s.deliveries.stats()).toMatchObject({ keys: 3, buckets: 3 })
    await s.close()
    root = open({ path: dir, compression: false, encoding: 'msgpack', maxDbs: PARTITION_MAX_DBS })
    const dbs = rawDeliveryDbs(root)
    expect(dbs.map((db) => [...db.getKeys({})].filter((k) => k.length === 16).length)).toEqual(dbs.map((_, i) => (i === 0 ? 1 : i === 1 + (hourOf(T) % HOUR_SLOTS) || i === 1 + (hourOf(T + 40 * H) % HOUR_SLOTS) ? 1 : 0)))
    await root.close()
  })

  it("an expired hour that shares its slot with a later hour keeps that hour's keys; one alone in its slot goes with it", async () => {
    const s = PartitionStore.open(fresh(), 0)
    // Event-id hours 32 apart share a slot (a client clock a day and a half off).
    s.deliveries.add(key(1), T, 1, T + 2 * H, T)
    s.deliveries.add(key(2), T + HOUR_SLOTS * H, 2, T + 40 * H, T)
    s.deliveries.add(key(3), T + H, 3, T + 2 * H, T)
    await s.commit(3)
    advanceWatermark(s, T + 3 * H)
    sweepExpired(s)
    await s.commit(4)
    expect(s.deliveries.stats()).toMatchObject({ keys: 1, buckets: 1 })
    expect(s.deliveries.firstSeen(key(2), T + HOUR_SLOTS * H, T + 1)).toBe(2)
    expect(s.deliveries.firstSeen(key(1), T, T + 1)).toBeUndefined()
    await s.close()
  })
})

describe('delivery keys by the second of their event id', () => {
  const hour = hourOf(T)
  const at = (n: number): number => T + ((n * 977) % 3600) * 1000 // spread over the hour, not in key order

  it("files an hour's keys by the second of their event id's time after the hour, so a batch's keys sort by time", async () => {
    const dir = fresh()
    const s = PartitionStore.open(dir, 0)
    for (let n = 1; n <= 40; n++) s.deliveries.add(key(n), at(n), n, T + 25 * H, T)
    await s.commit(40)
    for (let n = 1; n <= 40; n++) expect(s.deliveries.firstSeen(key(n), at(n), T + 1)).toBe(n)
    await s.close()
    const root = open({ path: dir, compression: false, encoding: 'msgpack', maxDbs: PARTITION_MAX_DBS })
    const rows = [...rawDeliveryDbs(root)[1 + (hour % HOUR_SLOTS)]!.getRange({})]
    expect(rows.map(({ key: k }) => k.length)).toEqual(rows.map(() => 18))
    // In key order: by second, each key's hash bytes after it.
    expect(rows.map(({ key: k }) => [k.readUInt32BE(0), k.readUInt16BE(4), k.toString('hex', 6)])).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 1)
        .sort((a, b) => at(a) - at(b))
        .map((n) => [hour, (at(n) - T) / 1000, key(n).slice(0, 24)]),
    )
    await root.close()
  })

  it("reads a format-5 store's keys without their second through their hour's marker; a key seen again keeps its latest sighting, through snapshots; the marker goes with its hour", async () => {
    const dir = fresh()
    let s = PartitionStore.open(dir, 0)
    s.deliveries.add(key(1), at(1), 1, T + 25 * H, T)
    s.deliveries.add(key(2), at(2), 2, T + 25 * H, T)
    await s.commit(2)
    await s.close()
    // Back to format 5: the same keys without their second.
    let root = open({ path: dir, compression: false, encoding: 'msgpack', maxDbs: PARTITION_MAX_DBS })
    const slot = rawDeliveryDbs(root)[1 + (hour % HOUR_SLOTS)]!
    await root.transaction(() => {
      for (const { key: k, value } of slot.getRange({})) {
        void slot.put(Buffer.concat([k.subarray(0, 4), k.subarray(6)]), Buffer.from(value))
        void slot.remove(Buffer.from(k))
      }
      void root.put('~format', 5)
    })
    await root.close()
    s = PartitionStore.open(dir, 0)
    expect([s.deliveries.firstSeen(key(1), at(1), T + 1), s.deliveries.firstSeen(key(2), at(2), T + 1), s.deliveries.firstSeen(key(3), at(3), T + 1)]).toEqual([1, 2, undefined])
    expect(s.deliveries.stats()).toMatchObject({ keys: 2, buckets: 1 })
    // Seen again 20 hours on: the horizon slides from there, though the key without a second is older.
    s.deliveries.resighted(key(1), at(1), T + 20 * H, T + 45 * H)
    await s.commit(3)
    const answers = (x: PartitionStore) => [x.deliveries.firstSeen(key(1), at(1), T + 44 * H), x.deliveries.firstSeen(key(2), at(2), T + 24 * H), x.deliveries.firstSeen(key(2), at(2), T + 24 * H + 1)]
    expect(answers(s)).toEqual([1, 2, undefined])
    const snapshot = [...s.deliveries.entries()]
    // Both forms of key 1 travel under one entry key, the one with its second last: the fold keeps it.
    const one = snapshot.filter(([k]) => k === `D:${hour}:${key(1).slice(0, 24)}`)
    expect(one.map(([, v]) => (v as number[]).length)).toEqual([3, 4])
    const folded = new Map(snapshot.map(([k, ...v]) => [k, v]))
    const replica = PartitionStore.open(fresh(), 0)
    await replica.restore({ entries: [...folded].map(([k, v]) => [k, ...v] as StateEntry), applied: 3, intent: undefined, changelog: { next: 0 } })
    expect(answers(replica)).toEqual([1, 2, undefined])
    await replica.close()
    // The hour ends: its keys and its marker go.
    advanceWatermark(s, T + 46 * H)
    sweepExpired(s)
    await s.commit(4)
    expect(s.deliveries.stats()).toMatchObject({ keys: 0, buckets: 0 })
    await s.close()
    root = open({ path: dir, compression: false, encoding: 'msgpack', maxDbs: PARTITION_MAX_DBS })
    expect([...rawDeliveryDbs(root)[0]!.getKeys({})]).toEqual([])
    expect(root.get('~format')).toBe(STATE_FORMAT)
    await root.close()
  })
})
