import { BloomFilter, bloomSizing } from '@adc/schemas'

/** Where a KeyFilter reads the committed keys it stands for, when it builds itself. */
export interface KeySource {
  /** Number of committed keys. */
  count(): number
  /** The two base hashes (`bloomHash1`, `bloomHash2` or bytes of a hash) of every committed key. */
  forEachHash(add: (h1: number, h2: number) => void): void
}

/**
 * The KeySource of the LMDB keys in `[start, end)`: `hashes` gives a key's two base hashes. (A fresh
 * range object for each call: lmdb keeps state in the options it is given.)
 */
export function lmdbKeySource<K>(
  db: { getKeysCount(range: { start: K; end: K }): number; getKeys(range: { start: K; end: K }): Iterable<K> },
  start: () => K,
  end: () => K,
  hashes: (key: K, add: (h1: number, h2: number) => void) => void,
): KeySource {
  return {
    count: () => db.getKeysCount({ start: start(), end: end() }),
    forEachHash: (add) => {
      for (const key of db.getKeys({ start: start(), end: end() })) hashes(key, add)
    },
  }
}

/** False-positive rate of a filter at its capacity. */
const FP_RATE = 0.02
/** Capacity a filter is built with, as a multiple of the keys it starts with (at least `MIN_CAPACITY`). */
const GROWTH = 4
const MIN_CAPACITY = 1 << 14

/**
 * A Bloom filter in front of a family of LMDB keys, so that a lookup of a key the database does not
 * hold (most of them: new impressions, new delivery keys) skips the B-tree: `mayHave` false means
 * certainly not committed; true means "look it up". The same shape as RocksDB's filter blocks, in
 * memory: about 8 bits per key of capacity at 2 % false positives (6 hashes), so 4–33 bits per key
 * held between builds.
 *
 * Correctness needs only that every committed key was added: the filter is built from the
 * database itself (`KeySource`) on the first lookup, each key written afterwards is added when it is
 * written (`add`; a write that then fails leaves a false positive, never a false negative), and
 * anything that writes keys another way (a restore from the changelog, an upgrade) calls
 * `invalidate`, so the next lookup builds it again. Deleted keys stay in the filter (false
 * positives) until the next build. It builds again, with GROWTH times the keys it finds, once the
 * keys added reach its capacity: about one key read per GROWTH - 1 keys added, whatever expired.
 */
export class KeyFilter {
  private filter: BloomFilter | undefined
  private capacity = 0
  /** Filters built so far (tests, metrics). */
  builds = 0

  /**
   * `minCapacity`: a capacity to build with at least, read at each build (a family whose key sets
   * come and go, such as the delivery index's hours, sizes a new one by the last ones, so that it
   * does not fill and read its keys back again and again while it grows).
   */
  constructor(
    private readonly source: KeySource,
    private readonly minCapacity: () => number = () => 0,
  ) {}

  /**
   * Starts empty, without reading the source: only for a family known to hold no committed key yet
   * (every key it gets is then added as it is written).
   */
  startEmpty(): void {
    this.filter = this.create(0)
  }

  /** Keys the filter holds (counted at its build, plus those added since); 0 until built. */
  get held(): number {
    return this.filter?.count ?? 0
  }

  /** false: the key is certainly not committed. */
  mayHave(h1: number, h2: number): boolean {
    return (this.filter ?? this.build()).hasHashed(h1, h2)
  }

  /** A key being written (before or in the transaction that commits it). */
  add(h1: number, h2: number): void {
    const f = this.filter
    if (!f) return // the next build reads it from the database
    if (f.count >= this.capacity) this.filter = undefined
    else f.addHashed(h1, h2)
  }

  /** Keys were written around `add`: build again on the next lookup. */
  invalidate(): void {
    this.filter = undefined
  }

  /** Bytes held (0 until built). */
  get byteLength(): number {
    return this.filter?.byteLength ?? 0
  }

  private build(): BloomFilter {
    const f = this.create(this.source.count())
    this.source.forEachHash((h1, h2) => f.addHashed(h1, h2))
    this.builds++
    this.filter = f
    return f
  }

  private create(keys: number): BloomFilter {
    this.capacity = Math.max(MIN_CAPACITY, GROWTH * keys, this.minCapacity())
    return new BloomFilter(bloomSizing(this.capacity, FP_RATE))
  }
}

/** Hours either side of the fullest hour held whose filters start at its size (`liveHourCapacity`). */
const LIVE_HOURS = 2

/**
 * The capacity a filter of one hour of keys starts with, among the filters of the hours held: twice
 * the keys of the fullest one when `hour` is within `LIVE_HOURS` of it, as one live hour's traffic is
 * much like the last's. A filter that starts small fills and reads its hour's keys back from the
 * database at each growth (about a third of a key read per key added); sized so, a new live hour's
 * filter starts empty and is usually never read back. Any other hour (event ids made on a clock
 * hours or years off, by mistake or on purpose; buckets of keys without a time) starts at the
 * smallest capacity and grows with its keys: sized by the fullest hour, each of thousands of such
 * hours, one key each, would hold as much memory as the live hour.
 */
export function liveHourCapacity(filters: ReadonlyMap<number, KeyFilter>, hour: number): number {
  let most = 0
  let fullest = -1
  for (const [h, f] of filters) {
    if (f.held > most) {
      most = f.held
      fullest = h
    }
  }
  return fullest >= 0 && Math.abs(hour - fullest) <= LIVE_HOURS ? 2 * most : 0
}
