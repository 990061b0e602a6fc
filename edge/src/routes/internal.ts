/**
 * `/v1/internal/*`, behind EDGE_SYNC_KEY: what core and operators ask the edge (spool, rate limit and
 * dedupe state), and two development-only benchmarks.
 */
import { Hono, type Context, type Next } from 'hono'
import { CREDENTIALS, type AppEnv, type Credential } from '../context.js'
import { sameSecret } from '../crypto.js'
import { fail } from '../errors.js'
import { timeBucketOfMs } from '../dedupe/dedupe-key.js'
import { shardFor } from '../dedupe/shard.js'
import { spoolFor } from '../ingest/spool-stub.js'
import { settingsFrom } from '../settings.js'
import { limiterFor } from '../rate-limit/budget.js'

const internal = new Hono<AppEnv>()

/** Operator routes, behind `Authorization: Bearer <EDGE_SYNC_KEY>` (the key core and the edge share). */
internal.use('/v1/internal/*', async function requireSyncKey(c, next) {
  const given = /^Bearer\s+(\S{1,512})\s*$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? ''
  if (!(await sameSecret(given, settingsFrom(c.env).edgeSyncKey))) throw fail('unauthorized', 'the edge sync key is required')
  await next()
})

/**
 * The benchmark routes write throwaway keys into a production dedupe shard and spin up limiter
 * objects: they exist in development only, whoever holds the sync key.
 */
async function developmentOnly(c: Context<AppEnv>, next: Next): Promise<void> {
  if ((c.env.ADC_ENV ?? 'development') !== 'development') throw fail('not_found', 'no such route')
  await next()
}
internal.use('/v1/internal/dedupe-bench', developmentOnly)
internal.use('/v1/internal/rate-limit-bench', developmentOnly)

/** A publisher's Spool: depth per topic, dead rows, backoff state. */
internal.get('/v1/internal/spool/:publisherId', async (c) => c.json(await spoolFor(c.env, c.req.param('publisherId')).stats()))

/**
 * A publisher's RateLimiter counters (allowed and refused requests and events since it started),
 * of the budget of one kind of credential (`?credential=`, default `server_key`).
 */
internal.get('/v1/internal/rate-limit/:publisherId', async (c) => {
  const credential = c.req.query('credential') ?? 'server_key'
  if (!(CREDENTIALS as readonly string[]).includes(credential)) throw fail('invalid_query', `credential is one of ${CREDENTIALS.join(', ')}`)
  return c.json(await limiterFor(c.env, c.req.param('publisherId'), credential as Credential).stats())
})

/** One dedupe shard's counters. */
internal.get('/v1/internal/dedupe/:shard', async (c) => c.json(await shardFor(c.env, Number(c.req.param('shard')) || 0).stats()))

/**
 * For the benchmark: `rounds` rounds of `batch` fresh random keys against one shard, one after the
 * other, the way the batch route calls it (a check RPC, then a confirm RPC of the new keys).
 * Answers how many keys were checked.
 */
internal.post('/v1/internal/dedupe-bench', async (c) => {
  type BenchBody = { rounds?: number; batch?: number; shard?: number }
  const { rounds = 10, batch = 500, shard = 0 } = await c.req.json<BenchBody>().catch((): BenchBody => ({}))
  const stub = shardFor(c.env, shard)
  let checked = 0
  const started = Date.now()
  for (let r = 0; r < Math.min(rounds, 1000); r++) {
    const prefix = timeBucketOfMs(Date.now())
    const keys = Array.from({ length: Math.min(batch, 5000) }, () => prefix + crypto.randomUUID().replace(/-/g, ''))
    const verdicts = await stub.check(keys)
    // What the ingest path costs per event: a check, then a confirm of the new keys.
    await stub.confirm(keys.filter((_, i) => verdicts[i] === 'new'))
    checked += verdicts.length
  }
  return c.json({ checked, elapsedMs: Date.now() - started })
})

/**
 * For the benchmark: `calls` take() RPCs to a fresh RateLimiter object, one after the other
 * (`concurrency` 1, what the rate limit adds to a request) or from `concurrency` loops at once
 * (one publisher's ceiling). The caller times the request: the Worker's clock does not advance
 * across calls to an object in the same process. Bounded: at most 20,000 calls and 64 loops.
 */
internal.post('/v1/internal/rate-limit-bench', async (c) => {
  type BenchBody = { calls?: number; concurrency?: number }
  const body = await c.req.json<BenchBody>().catch((): BenchBody => ({}))
  const calls = Math.min(Math.max(0, body.calls ?? 1000), 20_000)
  const concurrency = Math.min(Math.max(1, body.concurrency ?? 1), 64)
  const stub = limiterFor(c.env, `bench_${crypto.randomUUID()}`)
  const spec = { perSecond: 1e9, burst: 1e9 }
  let left = calls
  let allowed = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (left-- > 0) if ((await stub.take(spec, 1)).ok) allowed++
  }))
  return c.json({ calls, concurrency, allowed })
})

export default internal
