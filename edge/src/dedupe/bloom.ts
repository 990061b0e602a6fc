/**
 * Bloom filters for the DedupeShard. A filter answers "definitely new" or "maybe seen"; a "maybe"
 * is confirmed against the shard's exact key table, so a false positive costs one SQLite lookup and
 * never drops an event.
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

function fnv1a(key: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  // Final avalanche (murmur3 fmix32): FNV alone mixes the last characters poorly.
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
    this.addHashed(fnv1a(key, 0), fnv1a(key, SEED2) | 1)
  }

  /** false: certainly never added. true: maybe added. */
  has(key: string): boolean {
    return this.hasHashed(fnv1a(key, 0), fnv1a(key, SEED2) | 1)
  }

  get byteLength(): number {
    return this.bits.byteLength
  }
}

export interface RotatingBloomOptions {
  /** Keys per generation before it is rotated early. */
  capacity: number
  fpRate: number
  /** A generation is rotated after this long; two generations cover at least this window. */
  generationMs: number
  now?: () => number
}

/**
 * Two generations: keys go into `current`; lookups ask both. When `current` is older than
 * `generationMs` or full, `previous` is dropped and `current` becomes `previous`. A key added at
 * time t is therefore remembered at least until t + generationMs, and at most 2·generationMs; with
 * generationMs = 12 h that covers the 24 h dedupe window (keys older than one generation may be
 * forgotten early only when a generation fills up, which costs a missed edge dedupe, never a drop).
 */
export class RotatingBloom {
  private current: BloomFilter
  private previous: BloomFilter
  private startedAt: number
  private readonly sizing: BloomSizing
  private readonly now: () => number
  rotations = 0

  constructor(private readonly opts: RotatingBloomOptions) {
    this.sizing = bloomSizing(opts.capacity, opts.fpRate)
    this.now = opts.now ?? Date.now
    this.current = new BloomFilter(this.sizing)
    this.previous = new BloomFilter(this.sizing)
    this.startedAt = this.now()
  }

  private maybeRotate(): void {
    if (this.now() - this.startedAt >= this.opts.generationMs || this.current.count >= this.opts.capacity) {
      this.previous = this.current
      this.current = new BloomFilter(this.sizing)
      this.startedAt = this.now()
      this.rotations++
    }
  }

  add(key: string): void {
    this.maybeRotate()
    this.current.add(key)
  }

  /** Hashes the key once for both generations. */
  has(key: string): boolean {
    this.maybeRotate()
    const h1 = fnv1a(key, 0)
    const h2 = fnv1a(key, SEED2) | 1
    return this.current.hasHashed(h1, h2) || this.previous.hasHashed(h1, h2)
  }

  /** Bytes held by both generations. */
  get byteLength(): number {
    return this.current.byteLength + this.previous.byteLength
  }

  get sizingInfo(): BloomSizing {
    return this.sizing
  }
}
