import { BloomFilter, bloomHash1, bloomHash2, bloomSizing, type BloomSizing } from '@adc/schemas'

/**
 * The DedupeShard's filters (the Bloom filter itself is shared: schemas/src/bloom.ts). A "maybe
 * seen" is confirmed against the shard's exact key table, so a false positive costs one SQLite
 * lookup and never drops an event.
 */
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
    const h1 = bloomHash1(key)
    const h2 = bloomHash2(key)
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
