import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ulid } from 'ulid'
import { dedupeShardOf } from './shard.js'

/** A UUIDv7 (RFC 9562) made at `ms`, as mobile SDKs generate event ids. */
function uuidv7(ms: number, rand: () => number = Math.random): string {
  const t = ms.toString(16).padStart(12, '0')
  const r = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('')
  return `${t.slice(0, 8)}-${t.slice(8)}-7${r(3)}-${'89ab'[Math.floor(rand() * 4)]}${r(3)}-${r(12)}`
}

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0)

describe('dedupeShardOf', () => {
  it('sends a UUIDv7 id to the shard a ULID made in the same second goes to, in either case', () => {
    fc.assert(fc.property(fc.integer({ min: T0, max: T0 + 86_400_000 }), fc.integer({ min: 2, max: 64 }), (ms, shards) => {
      const want = dedupeShardOf('pub_1', ulid(ms), shards)
      const u = uuidv7(ms)
      expect(dedupeShardOf('pub_1', u, shards)).toBe(want)
      expect(dedupeShardOf('pub_1', u.toUpperCase(), shards)).toBe(want)
    }))
  })

  it('keeps the ULID mapping it had: publisher and the first 8 characters, upper-cased', () => {
    const id = ulid(T0)
    expect(dedupeShardOf('pub_1', id.toLowerCase(), 16)).toBe(dedupeShardOf('pub_1', id, 16))
    expect(dedupeShardOf('pub_1', `${id.slice(0, 8)}${'Z'.repeat(18)}`, 16)).toBe(dedupeShardOf('pub_1', id, 16))
  })

  it('spreads UUIDv7 ids of one publisher over the shards as time passes, like ULIDs', () => {
    const seen = new Set<number>()
    for (let s = 0; s < 400; s++) seen.add(dedupeShardOf('pub_1', uuidv7(T0 + s * 1024), 16))
    expect(seen.size).toBe(16)
    // Events a client makes within one second share a shard, so a batch costs one shard call.
    const batch = new Set(Array.from({ length: 50 }, (_, i) => dedupeShardOf('pub_1', uuidv7(T0 - (T0 % 1024) + i * 20), 16)))
    expect(batch.size).toBe(1)
  })
})
