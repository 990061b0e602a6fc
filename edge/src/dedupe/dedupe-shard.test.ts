import { abortAllDurableObjects, runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { idempotencyKey } from '@adc/schemas'
import { ulid } from 'ulid'
import { beforeEach, describe, expect, it } from 'vitest'
import { commit } from '../ingest/commit.js'
import { prepare, type IngestContext } from '../ingest/prepare.js'
import { dedupeShardOf, shardFor } from './shard.js'
import { settingsFrom } from '../settings.js'
import { TenantIndex } from '../tenants/tenants.js'
import { confirmed, dedupeConfirmed, impression, postBatch, proxyReceived, proxyReset } from '../../test/helpers.js'
import { dedupeKeyOf, timeBucketOfMs } from './dedupe-key.js'
import { DEDUPE_FUTURE_MS, DEDUPE_TTL_MS, type DedupeShard } from './dedupe-shard.js'

const TEST_CONFIG = { version: 1, campaignIds: ['cmp_1'], campaignPublishers: {}, publishers: [] }

let n = 0
const freshShard = () => env.DEDUPE_SHARD.get(env.DEDUPE_SHARD.idFromName(`test-shard-${++n}-${Math.random()}`))
/** A dedupe key as the ingest path makes it: the event id's time bucket, then a 32-hex idempotency key. */
const T0 = Date.now()
const key = (i: number, at = T0) => timeBucketOfMs(at) + i.toString(16).padStart(32, '0')

beforeEach(async () => {
  await proxyReset()
})

describe('DedupeShard', () => {
  it('says new the first time and duplicate once confirmed, and a repeat inside one call is a duplicate', async () => {
    const shard = freshShard()
    expect(await shard.check([key(1), key(2), key(1)])).toEqual(['new', 'new', 'duplicate'])
    expect(await shard.confirm([key(1), key(2)])).toBe(2)
    expect(await shard.check([key(2), key(3)])).toEqual(['duplicate', 'new'])
  })

  it('a key never confirmed (its request died before the event was durable) is new again', async () => {
    const shard = freshShard()
    expect(await shard.check([key(4)])).toEqual(['new'])
    expect(await shard.check([key(4)])).toEqual(['new'])
    // Checking writes nothing: only confirmed keys are kept.
    expect(await shard.stats()).toMatchObject({ checks: 2, keysKept: 0, confirms: 0 })
    expect(await shard.peek([key(4)])).toEqual([false])
    expect(await shard.confirm([key(4)])).toBe(1)
    expect(await shard.peek([key(4)])).toEqual([true])
    expect(await shard.check([key(4)])).toEqual(['duplicate'])
    expect(await shard.stats()).toMatchObject({ keysKept: 1, confirms: 1, confirmCalls: 1, exactDuplicates: 1 })
  })

  it('confirms a Bloom "maybe" against the exact table: a key the table does not hold is new', async () => {
    const shard = freshShard()
    await shard.check([key(7)])
    await shard.confirm([key(7)])
    // The filter still has the key; only the table forgets it (as TTL expiry would).
    await runInDurableObject(shard, (_i: DedupeShard, state) => {
      state.storage.sql.exec('DELETE FROM dedupe_keys_v2')
    })
    expect(await shard.check([key(7)])).toEqual(['new'])
    const stats = await shard.stats()
    expect(stats).toMatchObject({ bloomMaybe: 1, bloomFalsePositives: 1, exactDuplicates: 0 })
  })

  it('files a key by its event id\'s time; one without a usable time (token-derived ids, far-off clocks) is kept 24 h from its confirm', async () => {
    const shard = freshShard()
    const old = key(9, T0 - DEDUPE_TTL_MS - 5_000)
    const ahead = key(10, T0 + DEDUPE_FUTURE_MS + 60_000)
    const timed = key(12, T0 - DEDUPE_TTL_MS + 60_000)
    expect(await shard.confirm([old, ahead, timed])).toBe(3)
    expect(await shard.check([old, ahead, timed, key(13)])).toEqual(['duplicate', 'duplicate', 'duplicate', 'new'])
    const tables = await runInDurableObject(shard, (_i: DedupeShard, state) => ({
      v2: state.storage.sql.exec<{ k: string }>('SELECT k FROM dedupe_keys_v2').toArray().map((r) => r.k),
      untimed: state.storage.sql.exec<{ key: string }>('SELECT key FROM dedupe_keys ORDER BY key').toArray().map((r) => r.key),
    }))
    expect(tables).toEqual({ v2: [timed], untimed: [old.slice(8), ahead.slice(8)].sort() })
    // An untimed key older than 24 h since its confirm is new again.
    await runInDurableObject(shard, (_i: DedupeShard, state) => {
      state.storage.sql.exec('UPDATE dedupe_keys SET seen_at = ?', Date.now() - DEDUPE_TTL_MS - 1)
    })
    expect(await shard.check([old, ahead])).toEqual(['new', 'new'])
  })

  it('expires by the key\'s time prefix: the sweep deletes the range older than 24 h', async () => {
    const shard = freshShard()
    await runInDurableObject(shard, (_i: DedupeShard, state) => {
      state.storage.sql.exec('INSERT INTO dedupe_keys_v2 (k) VALUES (?), (?)', key(1, Date.now() - DEDUPE_TTL_MS - 5_000), key(2, T0 - 60_000))
    })
    // The first confirm of an instance sweeps.
    await shard.confirm([key(3)])
    const left = await runInDurableObject(shard, (_i: DedupeShard, state) => state.storage.sql.exec<{ k: string }>('SELECT k FROM dedupe_keys_v2 ORDER BY k').toArray().map((r) => r.k))
    expect(left).toEqual([key(2, T0 - 60_000), key(3)].sort())
  })

  it('stores a timed key alone, time-prefixed, in a table without a time index (an insert touches one B-tree)', async () => {
    const shard = freshShard()
    await shard.confirm([key(1)])
    const got = await runInDurableObject(shard, (_i: DedupeShard, state) => ({
      schema: state.storage.sql.exec<{ type: string; sql: string | null }>("SELECT type, sql FROM sqlite_master WHERE tbl_name = 'dedupe_keys_v2'").toArray(),
      untimed: state.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM dedupe_keys').one().n,
    }))
    expect(got.schema.filter((r) => r.type === 'index')).toEqual([])
    expect(got.schema).toHaveLength(1)
    expect(got.schema[0]!.sql).toMatch(/\(k TEXT PRIMARY KEY\) WITHOUT ROWID/)
    expect(got.untimed).toBe(0)
  })

  it('judges and confirms hundreds of keys per call (one statement each, no bound-parameter limit)', async () => {
    const shard = freshShard()
    const keys = Array.from({ length: 600 }, (_, i) => key(100_000 + i))
    expect(await shard.check(keys)).toEqual(Array(600).fill('new'))
    expect(await shard.confirm(keys.slice(0, 300))).toBe(300)
    const again = await shard.check([...keys, keys[599]!])
    expect(again.slice(0, 300)).toEqual(Array(300).fill('duplicate'))
    expect(again.slice(300, 600)).toEqual(Array(300).fill('new'))
    expect(again[600]).toBe('duplicate')
  })

  it('still reads rows written before the time-prefixed table (un-prefixed key, seen_at, committed) after an upgrade', async () => {
    const name = `legacy-${Math.random()}`
    const stub = () => env.DEDUPE_SHARD.get(env.DEDUPE_SHARD.idFromName(name))
    const plain = (i: number) => i.toString(16).padStart(32, '0')
    // The earlier version's rows: a confirmed key, a pending one, an expired one.
    await runInDurableObject(stub(), (_i: DedupeShard, state) => {
      state.storage.sql.exec('INSERT INTO dedupe_keys VALUES (?, ?, 1), (?, ?, 0), (?, ?, 1)', plain(21), Date.now() - 60_000, plain(22), Date.now(), plain(23), Date.now() - DEDUPE_TTL_MS - 1)
    })
    await abortAllDurableObjects()
    expect(await stub().check([key(21), key(22), key(23), key(24)])).toEqual(['duplicate', 'new', 'new', 'new'])
    expect(await stub().peek([key(21), key(22)])).toEqual([true, false])
    // A pending row turns confirmed when its event is confirmed again.
    await stub().confirm([key(22)])
    expect(await stub().check([key(22)])).toEqual(['duplicate'])
  })

  it('remembers keys across a restart (the filter is rebuilt from the table)', async () => {
    const name = `restart-${Math.random()}`
    const stub = () => env.DEDUPE_SHARD.get(env.DEDUPE_SHARD.idFromName(name))
    await stub().check([key(11), key(12)])
    await stub().confirm([key(11), key(12)])
    await abortAllDurableObjects()
    // A new stub reaches a new instance with an empty filter, rebuilt from SQLite in its constructor.
    const fresh = stub()
    expect(await fresh.check([key(11), key(13)])).toEqual(['duplicate', 'new'])
    expect((await fresh.stats()).exactDuplicates).toBe(1)
  })

  it('remembers a signature once', async () => {
    const shard = freshShard()
    expect(await shard.rememberSignature('sig-a', Date.now() + 60_000)).toBe(true)
    expect(await shard.rememberSignature('sig-a', Date.now() + 60_000)).toBe(false)
    expect(await shard.signatureUsed('sig-a')).toBe(true)
    expect(await shard.signatureUsed('sig-b')).toBe(false)
  })
})

describe('dedupe in the ingest path', () => {
  const settings = () => settingsFrom(env)
  const ctx = (): IngestContext => ({
    publisher: { id: 'pub_test', apiKeyHashes: [], publicKeyHashes: [], signingKeys: {}, requestSigningKeys: {}, appRequestSigningKeys: {}, rateLimit: { perSecond: 1, burst: 1 }, active: true },
    credential: 'server_key', tenants: new TenantIndex(TEST_CONFIG), source: 'batch', receivedAt: Date.now(), observed: {}, edge: {},
  })

  it('makes one check and one confirm RPC per shard per batch', async () => {
    const calls: number[] = []
    const confirms: number[] = []
    const counting = {
      idFromName: (name: string) => env.DEDUPE_SHARD.idFromName(`count-${name}`),
      get: (id: DurableObjectId) => {
        const stub = env.DEDUPE_SHARD.get(id)
        return {
          check: (keys: string[]) => { calls.push(keys.length); return stub.check(keys) },
          confirm: (keys: string[]) => { confirms.push(keys.length); return stub.confirm(keys) },
        }
      },
    }
    const events = Array.from({ length: 40 }, () => impression())
    const shards = new Set(events.map((e) => dedupeShardOf('pub_test', e.eventId as string, settings().dedupeShards)))
    const out = await commit(await prepare(events.map((raw) => ({ type: 'impression' as const, raw })), ctx(), settings()), { ...env, DEDUPE_SHARD: counting } as unknown as typeof env, settings())
    expect(out.counts.accepted).toBe(40)
    expect(calls.length).toBe(shards.size)
    expect(calls.reduce((a, b) => a + b, 0)).toBe(40)
    expect(confirms.length).toBe(shards.size)
    expect(confirms.reduce((a, b) => a + b, 0)).toBe(40)
  })

  it('confirms after the answer when deferred: until then a retry is new (forwarded again), and a 409 only once the keys are confirmed', async () => {
    let open!: () => void
    const gate = new Promise<void>((r) => { open = r })
    const gated = {
      idFromName: (name: string) => env.DEDUPE_SHARD.idFromName(name),
      get: (id: DurableObjectId) => {
        const stub = env.DEDUPE_SHARD.get(id)
        return { check: (keys: string[]) => stub.check(keys), confirm: (keys: string[]) => gate.then(() => stub.confirm(keys)) }
      },
    }
    const events = [impression(), impression()]
    const items = () => events.map((raw) => ({ type: 'impression' as const, raw }))
    const deferred: Promise<void>[] = []
    const first = await commit(await prepare(items(), ctx(), settings()), { ...env, DEDUPE_SHARD: gated } as unknown as typeof env, settings(), { later: (w) => { deferred.push(w) } })
    expect(first.counts).toMatchObject({ accepted: 2, duplicate: 0 })
    expect(deferred).toHaveLength(1)
    // Answered but not confirmed yet: the events are durable, their keys not yet stored.
    expect(await dedupeConfirmed('impression', events)).toEqual([false, false])
    const early = await commit(await prepare(items(), ctx(), settings()), env, settings())
    expect(early.counts).toMatchObject({ accepted: 2, duplicate: 0 })
    open()
    await Promise.all(deferred)
    expect(await dedupeConfirmed('impression', events)).toEqual([true, true])
    const late = await commit(await prepare(items(), ctx(), settings()), env, settings())
    expect(late.counts).toMatchObject({ accepted: 0, duplicate: 2 })
    expect(late.results.map((r) => r.httpStatus)).toEqual([409, 409])
    // The early retry reached the log a second time; core's exact dedupe keeps one of each.
    const ids = events.map((e) => e.impressionId)
    expect((await proxyReceived()).records.map((r) => r.key)).toEqual([...ids, ...ids])
  })

  it('a batch whose events were made within one second costs one check and one confirm RPC, and a retry in another batch finds the same shard', async () => {
    const calls: string[] = []
    const counting = {
      idFromName: (name: string) => env.DEDUPE_SHARD.idFromName(name),
      get: (id: DurableObjectId) => {
        const stub = env.DEDUPE_SHARD.get(id)
        return {
          check: (keys: string[]) => { calls.push(`check ${keys.length}`); return stub.check(keys) },
          confirm: (keys: string[]) => { calls.push(`confirm ${keys.length}`); return stub.confirm(keys) },
        }
      },
    }
    const countingEnv = { ...env, DEDUPE_SHARD: counting } as unknown as typeof env
    const t = Math.floor(Date.now() / 1024) * 1024
    const events = Array.from({ length: 50 }, (_, i) => impression({ eventId: ulid(t + (i % 1000)) }))
    const items = (list: Record<string, unknown>[]) => list.map((raw) => ({ type: 'impression' as const, raw }))
    const first = await commit(await prepare(items(events), ctx(), settings()), countingEnv, settings())
    expect(first.counts.accepted).toBe(50)
    expect(calls).toEqual(['check 50', 'confirm 50'])
    // Retried in a different batch, beside a new event made at another time: still found.
    const retry = await commit(await prepare(items([impression({ eventId: ulid(t + 5_000_000) }), events[7]!]), ctx(), settings()), countingEnv, settings())
    expect(retry.results.map((r) => r.status)).toEqual(['accepted', 'duplicate'])
  })

  it('the batch route confirms concurrent requests\' keys together: fewer confirm calls than requests, every key confirmed', async () => {
    const t = Math.floor(Date.now() / 1024) * 1024
    const batches = Array.from({ length: 6 }, (_, b) => Array.from({ length: 5 }, (_, i) => impression({ eventId: ulid(t + b * 10 + i) })))
    const shard = shardFor(env, dedupeShardOf('pub_test', batches[0]![0]!.eventId as string, settings().dedupeShards))
    const before = await shard.stats()
    const answers = await Promise.all(batches.map(async (events) => (await postBatch('impressions', { events })).json<any>()))
    expect(answers.map((a) => a.accepted)).toEqual(Array(6).fill(5))
    await confirmed('impression', batches.flat())
    const after = await shard.stats()
    expect(after.confirms - before.confirms).toBe(30)
    expect(after.confirmCalls - before.confirmCalls).toBeLessThan(6)
  })

  it('a retry sent the moment the answer came, before the batched confirm landed, is still a duplicate (409) and not forwarded again', async () => {
    const events = Array.from({ length: 5 }, () => impression())
    const first = await (await postBatch('impressions', { events })).json<any>()
    expect(first.accepted).toBe(5)
    const forwarded = (await proxyReceived()).records.length
    const retry = await (await postBatch('impressions', { events })).json<any>()
    expect(retry.results.map((r: any) => [r.status, r.code])).toEqual(Array(5).fill(['duplicate', 'duplicate_delivery']))
    expect((await proxyReceived()).records.length).toBe(forwarded)
    await confirmed('impression', events)
    const later = await (await postBatch('impressions', { events })).json<any>()
    expect(later.duplicate).toBe(5)
  })

  it('a request that died after the dedupe check does not turn its retry into a duplicate', async () => {
    const e = impression()
    const k = dedupeKeyOf(e.eventId as string, await idempotencyKey('pub_test', 'impression', e.eventId as string))
    // A request cut off between the check and delivery: its key was checked, never confirmed.
    await shardFor(env, dedupeShardOf('pub_test', e.eventId as string, settings().dedupeShards)).check([k])
    const body = await (await postBatch('impressions', { events: [e] })).json<any>()
    expect(body.results[0].status).toBe('accepted')
    await confirmed('impression', [e])
    const again = await (await postBatch('impressions', { events: [e] })).json<any>()
    expect(again.results[0].status).toBe('duplicate')
  })

  it('forwards anyway, marked dedupe skipped, when a shard errors or is too slow', async () => {
    const failing = {
      idFromName: (name: string) => name,
      get: (name: string) => ({
        check: () => (name.endsWith(':0') ? Promise.reject(new Error('shard down')) : new Promise(() => {})),
      }),
    }
    const fast = { ...settings(), dedupeTimeoutMs: 50 }
    const events = Array.from({ length: 6 }, () => impression())
    const out = await commit(await prepare(events.map((raw) => ({ type: 'impression' as const, raw })), ctx(), fast), { ...env, DEDUPE_SHARD: failing } as unknown as typeof env, fast)
    expect(out.counts.accepted).toBe(6)
    const got = await proxyReceived()
    expect(got.records.map((r) => r.value.edge.dedupe)).toEqual(Array(6).fill('skipped'))
  })
})
