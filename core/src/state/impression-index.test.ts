import { afterEach, describe, expect, it } from 'vitest'
import { open } from 'lmdb'
import { sweepExpired } from './expiry.js'
import { HOUR_SLOTS as IMPRESSION_SLOTS, PARTITION_MAX_DBS } from './hour-slots.js'
import { encodeImpressionBytes } from './impression-codec.js'
import type { ImpressionState } from './keys.js'
import { PartitionStore, STATE_FORMAT, type StateEntry } from './partition-store.js'
import { tempDirs } from '../testing/temp-dirs.js'

const dirs = tempDirs('adc-impidx-')
afterEach(() => dirs.removeAll())
const H = 3_600_000
const T = Date.UTC(2026, 10, 23, 12)
const hourOf = (ms: number): number => Math.floor(ms / H)

/** Commits one batch of puts (and a watermark), answering its changelog entries. */
async function batch(s: PartitionStore, offset: number, wm: number, puts: Array<[string, unknown]>): Promise<StateEntry[]> {
  s.put('~wm', wm)
  sweepExpired(s)
  for (const [k, v] of puts) s.put(k, v)
  const entries = s.pendingEntries(offset)
  await s.commit(offset)
  return entries
}

describe('impression index', () => {
  it('reads the copy of the newest hour when a state moves to a later hour, and drops each hour once the watermark passes its end', async () => {
    const s = PartitionStore.open(dirs.make(), 0)
    const first: ImpressionState = { io: 1, il: T, ex: T + 25 * H }
    await batch(s, 1, T, [['i:p\u001fa', first]])
    // Seen again three hours later: its expiry moves to a later hour, the first copy stays behind.
    const later: ImpressionState = { ...first, co: 2, cl: T + 3 * H, ex: T + 28 * H }
    await batch(s, 2, T + 3 * H, [['i:p\u001fa', later]])
    expect(s.impressions.stats()).toMatchObject({ keys: 2, hours: 2 })
    expect(s.get('i:p\u001fa')).toStrictEqual(later)
    // The first copy's hour ends: it goes, the newest copy stays and is still read.
    await batch(s, 3, (hourOf(T + 25 * H) + 1) * H, [])
    expect(s.impressions.stats()).toMatchObject({ keys: 1, hours: 1 })
    expect(s.get('i:p\u001fa')).toStrictEqual(later)
    await batch(s, 4, (hourOf(T + 28 * H) + 1) * H, [])
    expect(s.impressions.stats()).toMatchObject({ keys: 0, hours: 0 })
    expect(s.get('i:p\u001fa')).toBeUndefined()
    await s.close()
  })

  it('a replica restored from the changelog holds what the owner holds, dropped hours included, and reads the same states', async () => {
    const owner = PartitionStore.open(dirs.make(), 0)
    const replica = PartitionStore.open(dirs.make(), 0)
    const log: StateEntry[][] = []
    for (let i = 0; i < 6; i++) {
      const at = T + i * 2 * H
      log.push(await batch(owner, i, at, [[`i:p\u001fimp_${i}`, { io: i, il: at, ex: at + 3 * H }], ['i:p\u001fimp_0', { io: 0, il: at, ex: at + 3 * H }]]))
    }
    expect(log.flat().some(([k, ...v]) => k.startsWith('I:') && v.length === 0)).toBe(true)
    for (const [i, entries] of log.entries()) await replica.restore({ entries, applied: i, intent: undefined, changelog: { next: i + 1 } })
    expect([...replica.entries()]).toStrictEqual([...owner.entries()])
    for (let i = 0; i < 6; i++) expect(replica.get(`i:p\u001fimp_${i}`)).toStrictEqual(owner.get(`i:p\u001fimp_${i}`))
    expect(owner.get('i:p\u001fimp_1')).toBeUndefined() // its hour has ended
    expect(owner.get('i:p\u001fimp_0')).toMatchObject({ io: 0, il: T + 10 * H })
    await owner.close()
    await replica.close()
  })

  it('keeps names apart whatever characters they hold (NUL, non-ASCII, lone surrogates), through a reopen', async () => {
    const dir = dirs.make()
    let s = PartitionStore.open(dir, 0)
    const names = ['\u0000AB', '\u4241', 'AB', 'a\u00e9', 'a\u00c3\u00a9', 'x\ud800', 'x\udc00', 'p\u001fid', 'p\u001fid\u0000']
    await batch(s, 1, T, names.map((n, i) => [`i:${n}`, { io: i, ex: T + H }]))
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(names.map((n) => s.get<ImpressionState>(`i:${n}`)?.io)).toEqual(names.map((_, i) => i))
    expect(new Set([...s.entries()].filter(([k]) => k.startsWith('i:')).map(([k]) => k))).toEqual(new Set(names.map((n) => `i:${n}`)))
    await s.close()
  })

  it('a value without an expiry written after a state with one is the one read (the later copy goes)', async () => {
    const s = PartitionStore.open(dirs.make(), 0)
    await batch(s, 1, T, [['i:k', { io: 1, ex: T + 40 * H }]])
    await batch(s, 2, T, [['i:k', 7]]) // the hour of the watermark plus the state lifetime: earlier
    expect(s.get('i:k')).toBe(7)
    expect(s.impressions.stats().keys).toBe(1)
    await s.close()
  })

  it("a late record's state written into an hour this batch drops stays readable, and goes with a later sweep", async () => {
    const dir = dirs.make()
    let s = PartitionStore.open(dir, 0)
    await batch(s, 1, T, [['i:a', { io: 1, ex: T + H }]])
    // The watermark passes the hour's end, and in the same batch a late record writes a state expiring in it.
    await batch(s, 2, T + 3 * H, [['i:b', { io: 2, ex: T + H + 1 }]])
    expect(s.get('i:a')).toBeUndefined()
    expect(s.get('i:b')).toStrictEqual({ io: 2, ex: T + H + 1 })
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.get('i:b')).toStrictEqual({ io: 2, ex: T + H + 1 })
    await batch(s, 3, T + 3 * H + 1, [])
    expect(s.get('i:b')).toBeUndefined()
    expect(s.impressions.stats()).toMatchObject({ keys: 0, hours: 0 })
    await s.close()
  })

  it('answers a name no hour holds from the filter over all hours, without reading or building any hour\'s filter', async () => {
    const dir = dirs.make()
    let s = PartitionStore.open(dir, 0)
    for (let h = 0; h < 4; h++) await batch(s, h, T + h * H, Array.from({ length: 50 }, (_, i): [string, unknown] => [`i:p\u001f${h}_${i}`, { io: i, ex: T + (h + 25) * H }]))
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.impressions.stats().hours).toBe(4)
    let found = 0
    for (let i = 0; i < 1000; i++) if (s.get(`i:p\u001fnew_${i}`) !== undefined) found++
    expect(found).toBe(0)
    // A false positive of the filter over all may build the hours' filters, and a slice's or two.
    const builds = s.impressions.filterBuilds()
    expect(builds.hours + builds.slices).toBeLessThanOrEqual(6)
    expect(s.get('i:p\u001f2_7')).toStrictEqual({ io: 7, ex: T + 27 * H })
    expect(s.impressions.filterBuilds().slices).toBeGreaterThan(0)
    await s.close()
  })

  it("finds a state a day old past every later hour with one probe of each hour's filter, not of each of its slices", async () => {
    const dir = dirs.make()
    let s = PartitionStore.open(dir, 0)
    // 26 hours of expiry, six tenths each: 156 slices.
    for (let h = 0; h < 26; h++) {
      for (let t = 0; t < 6; t++) {
        const at = T + h * H + t * 600_000
        await batch(s, h * 6 + t, at, Array.from({ length: 20 }, (_, i): [string, unknown] => [`i:p\u001f${h}_${t}_${i}`, { io: i, il: at, ex: at + 25 * H }]))
      }
    }
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.impressions.stats()).toMatchObject({ hours: 26, slices: 156 })
    expect(s.get('i:p\u001f0_2_7')).toStrictEqual({ io: 7, il: T + 2 * 600_000, ex: T + 2 * 600_000 + 25 * H })
    // Every hour's filter is asked; of the slices', only the oldest hour's (and those of an hour
    // whose filter answers a false positive): without the hours' filters, all 156.
    const builds = s.impressions.filterBuilds()
    expect(builds.hours).toBe(26)
    expect(builds.slices).toBeLessThanOrEqual(12)
    await s.close()
  })

  it('drops an hour that shares its database with a later one key by key, and clears a database an hour holds alone', async () => {
    const dir = dirs.make()
    let s = PartitionStore.open(dir, 0)
    const h0 = hourOf(T)
    // Hours 32 apart share a database (a watermark that jumped a day ahead would write such a pair).
    await batch(s, 1, T, [['i:a', { io: 1, ex: (h0 + 1) * H }], ['i:b', { io: 2, ex: (h0 + 1 + IMPRESSION_SLOTS) * H }], ['i:c', { io: 3, ex: (h0 + 2) * H }]])
    expect(s.impressions.stats()).toMatchObject({ keys: 3, hours: 3 })
    await batch(s, 2, (h0 + 3) * H, [])
    expect(s.get('i:a')).toBeUndefined()
    expect(s.get('i:c')).toBeUndefined()
    expect(s.get('i:b')).toStrictEqual({ io: 2, ex: (h0 + 1 + IMPRESSION_SLOTS) * H })
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.impressions.stats()).toMatchObject({ keys: 1, hours: 1 })
    expect(s.get('i:b')).toStrictEqual({ io: 2, ex: (h0 + 1 + IMPRESSION_SLOTS) * H })
    await s.close()
  })

  it('takes impression states off the minute schedule entries a format-3 changelog restores, and leaves the rest', async () => {
    const s = PartitionStore.open(dirs.make(), 0)
    await s.restore({
      entries: [['x:0000000006:000000000000009', 'i:p\u001fa\nw:b'], ['x:0000000007:000000000000009', ['w:c']], ['i:p\u001fa', { io: 1, ex: T + H }]],
      applied: 9, intent: undefined, changelog: { next: 1 },
    })
    expect(s.range('x:', 'x:~', 10)).toEqual([['x:0000000006:000000000000009', 'w:b'], ['x:0000000007:000000000000009', ['w:c']]])
    expect(s.get('i:p\u001fa')).toStrictEqual({ io: 1, ex: T + H })
    await s.close()
  })

  it("files a batch's states by the tenth of the hour they expire in, and reads the newest copy when a state moves to a later tenth", async () => {
    const dir = dirs.make()
    let s = PartitionStore.open(dir, 0)
    const base = (hourOf(T) + 25) * H
    await batch(s, 1, T, [['i:a', { io: 1, ex: base + 60_000 }], ['i:b', { io: 2, ex: base + 5 * 60_000 }], ['i:c', { io: 3, ex: base + 59 * 60_000 }]])
    // a and b share the hour's first tenth; c is in its last.
    expect(s.impressions.stats()).toMatchObject({ keys: 3, hours: 1, slices: 2 })
    await batch(s, 2, T + 20 * 60_000, [['i:a', { io: 1, co: 4, ex: base + 35 * 60_000 }]])
    expect(s.impressions.stats()).toMatchObject({ keys: 4, hours: 1, slices: 3 })
    expect(s.get('i:a')).toStrictEqual({ io: 1, co: 4, ex: base + 35 * 60_000 })
    await s.close()
    s = PartitionStore.open(dir, 0)
    expect(s.impressions.stats()).toMatchObject({ keys: 4, hours: 1, slices: 3 })
    expect(s.get('i:a')).toStrictEqual({ io: 1, co: 4, ex: base + 35 * 60_000 })
    // A replica restored from a snapshot (oldest slice first) reads the newest copy too.
    const replica = PartitionStore.open(dirs.make(), 0)
    await replica.restore({ entries: [...s.entries()], applied: 2, intent: undefined, changelog: { next: 1 } })
    expect(replica.get('i:a')).toStrictEqual({ io: 1, co: 4, ex: base + 35 * 60_000 })
    // The hour ends: every tenth of it goes at once.
    await batch(s, 3, base + H, [])
    expect(s.impressions.stats()).toMatchObject({ keys: 0, hours: 0, slices: 0 })
    expect(s.get('i:a')).toBeUndefined()
    await s.close()
    await replica.close()
  })

  it('reads a format-5 store as it is: its [hour][name] entries are the oldest copies of their hour, and go with it', async () => {
    const dir = dirs.make()
    const hour = hourOf(T) + 25
    const old: ImpressionState = { io: 1, il: T, ex: hour * H + 50 * 60_000 }
    const wide: ImpressionState = { io: 2, il: T, ex: hour * H + 10 }
    const raw = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3, maxDbs: PARTITION_MAX_DBS })
    await raw.put('~format', 5)
    await raw.put('~wm', T)
    const db = raw.openDB<Buffer, Buffer>({ name: `~impressions.${hour % IMPRESSION_SLOTS}`, keyEncoding: 'binary', encoding: 'binary', compression: false })
    const hourBytes = Buffer.alloc(4)
    hourBytes.writeUInt32BE(hour, 0)
    await db.put(Buffer.concat([hourBytes, Buffer.from('p\u001fa', 'latin1')]), encodeImpressionBytes(old))
    await db.put(Buffer.concat([hourBytes, Buffer.from([0]), Buffer.from('p\u001f\u00e9', 'utf16le')]), encodeImpressionBytes(wide))
    await raw.close()
    const s = PartitionStore.open(dir, 0)
    expect(s.get('i:p\u001fa')).toStrictEqual(old)
    expect(s.get('i:p\u001f\u00e9')).toStrictEqual(wide)
    expect(s.impressions.stats()).toMatchObject({ keys: 2, hours: 1, slices: 1 })
    // Seen again: the new copy goes to a tenth of the same hour (an earlier one than the old copy's
    // expiry would give), and is the one read.
    const again: ImpressionState = { ...old, co: 3, ex: hour * H + 5 * 60_000 }
    await batch(s, 1, T + 1000, [['i:p\u001fa', again]])
    expect(s.get('i:p\u001fa')).toStrictEqual(again)
    const snapshot = [...s.entries()].filter(([k]) => k.startsWith('i:'))
    expect(snapshot.map(([k]) => k)).toEqual(['i:p\u001f\u00e9', 'i:p\u001fa', 'i:p\u001fa']) // format-5 entries first (key order), then the tenths
    const replica = PartitionStore.open(dirs.make(), 0)
    await replica.restore({ entries: snapshot, applied: 1, intent: undefined, changelog: { next: 1 } })
    expect(replica.get('i:p\u001fa')).toStrictEqual(again)
    await replica.close()
    await batch(s, 2, (hour + 1) * H, [])
    expect(s.impressions.stats()).toMatchObject({ keys: 0, hours: 0, slices: 0 })
    expect(s.get('i:p\u001f\u00e9')).toBeUndefined()
    await s.close()
    const reopened = open({ path: dir, compression: false, encoding: 'msgpack', mapSize: 2 * 1024 ** 3, maxDbs: PARTITION_MAX_DBS })
    expect(reopened.get('~format')).toBe(STATE_FORMAT)
    await reopened.close()
  })
})
