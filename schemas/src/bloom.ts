/**
 * Bloom filters: a filter answers "certainly never added" or "maybe added". Used in front of exact
 * key tables, where a "maybe" is confirmed against the table, so a false positive costs one lookup
 * and never a verdict: the edge's DedupeShard (edge/src/dedupe/bloom.ts, over its SQLite table) and
 * the processor's partition state (core/src/state/key-filter.ts, over LMDB).
 *
 * Sizing (standard formulas): m = -n·ln(p) / (ln 2)², k = round(m/n · ln 2).
 * Hashing: Kirsch–Mitzenmacher double hashing, g_i(x) = h1(x) + i·h2(x) mod m, with h1, h2 two
 * independent 32-bit FNV-1a variants; "Less Hashing, Same Performance" (2006) shows this keeps the
 * asymptotic false-positive rate of k independent hashes.
 */
export interface BloomSizing {
  bits: number
  hashes: number
}

export function bloomSizing(capacity: number, fpRate: number): BloomSizing {
  const bits = Math.max(64, Math.ceil((-capacity * Math.log(fpRate)) / (Math.LN2 * Math.LN2)))
  const hashes = Math.max(1, Math.round((bits / capacity) * Math.LN2))
  return { bits, hashes }
}

const SEED2 = 0x5bd1e995

/** The two base hashes of a key (`addHashed`, `hasHashed`): hash once, ask several filters. */
export const bloomHash1 = (key: string): number => fnv1a(key, 0)
export const bloomHash2 = (key: string): number => fnv1a(key, SEED2) | 1

/**
 * Both base hashes in one pass over `key`: `out[0]` = `bloomHash1(key)`, `out[1]` = `bloomHash2(key)`
 * (the same numbers, signs included). For the processor's impression keys, hashed on every lookup
 * and every write.
 */
export function bloomHashPair(key: string, out: Float64Array): void {
  let a = 0x811c9dc5 >>> 0
  let b = (0x811c9dc5 ^ SEED2) >>> 0
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193)
  }
  out[0] = fmix32(a)
  out[1] = fmix32(b) | 1
}

/** `bloomHashPair` over bytes `b[from, to)` instead of a string's characters (keys held as bytes). */
export function bloomHashBytes(b: Uint8Array, from: number, to: number, out: Float64Array): void {
  let a = 0x811c9dc5 >>> 0
  let c = (0x811c9dc5 ^ SEED2) >>> 0
  for (let i = from; i < to; i++) {
    const x = b[i]!
    a = Math.imul(a ^ x, 0x01000193)
    c = Math.imul(c ^ x, 0x01000193)
  }
  out[0] = fmix32(a)
  out[1] = fmix32(c) | 1
}

function fnv1a(key: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return fmix32(h)
}

/** Final avalanche (murmur3 fmix32): FNV alone mixes the last characters poorly. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

export class BloomFilter {
  readonly bits: Uint8Array
  readonly size: number
  readonly hashes: number
  count = 0

  constructor(sizing: BloomSizing) {
    this.size = sizing.bits
    this.hashes = sizing.hashes
    this.bits = new Uint8Array(Math.ceil(sizing.bits / 8))
  }

  /** Adds a key by its two base hashes (`baseHashes`), so a caller asking several filters hashes once. */
  addHashed(h1: number, h2: number): void {
    for (let i = 0; i < this.hashes; i++) {
      const p = (h1 + Math.imul(i, h2) >>> 0) % this.size
      this.bits[p >>> 3]! |= 1 << (p & 7)
    }
    this.count++
  }

  /** `has` by the key's two base hashes. */
  hasHashed(h1: number, h2: number): boolean {
    for (let i = 0; i < this.hashes; i++) {
      const p = (h1 + Math.imul(i, h2) >>> 0) % this.size
      if ((this.bits[p >>> 3]! & (1 << (p & 7))) === 0) return false
    }
    return true
  }

  add(key: string): void {
    this.addHashed(bloomHash1(key), bloomHash2(key))
  }

  /** false: certainly never added. true: maybe added. */
  has(key: string): boolean {
    return this.hasHashed(bloomHash1(key), bloomHash2(key))
  }

  get byteLength(): number {
    return this.bits.byteLength
  }
}
