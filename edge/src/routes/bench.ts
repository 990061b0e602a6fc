/**
 * `POST /v1/bench/validate/:type`: the batch route's work without its I/O, for the edge benchmark (404 unless BENCH_ROUTES=1).
 */
import { MAX_BATCH_BYTES, type EventType } from '@adc/schemas'
import { Hono } from 'hono'
import type { AppEnv } from '../context.js'
import { fail } from '../errors.js'
import { prepare } from '../ingest/prepare.js'
import { authenticate } from '../middleware/auth.js'
import { parseJsonBody, readBody } from '../middleware/body.js'
import { loadTenants } from '../middleware/tenants.js'
import { parseBatch, requestFacts } from '../ingest/request.js'

const bench = new Hono<AppEnv>()

/**
 * For the edge benchmark only (404 unless `BENCH_ROUTES=1`): the batch route's necessary work and
 * nothing else: the tenant config, the body, the publisher's key, the JSON and every per-event
 * check with its idempotency key (`prepare`), then the counts. No rate limit, dedupe, forward or
 * stats: the floor the full route is measured against.
 */
bench.post(
  '/v1/bench/validate/:type',
  async function benchOnly(c, next) {
    if (c.env.BENCH_ROUTES !== '1') throw fail('not_found', 'no such route')
    await next()
  },
  loadTenants(),
  readBody({ maxBytes: MAX_BATCH_BYTES, mediaTypes: ['application/json'] }),
  authenticate(),
  async function validateOnly(c) {
    const type: EventType = c.req.param('type') === 'clicks' ? 'click' : 'impression'
    const events = parseBatch(parseJsonBody(c.var.rawBody))
    const prepared = await prepare(events.map((raw) => ({ type, raw })), {
      publisher: c.var.publisher, credential: c.var.credential, tenants: c.var.tenants, source: 'batch', receivedAt: Date.now(), ...requestFacts(c),
    }, c.var.settings)
    return c.json({ received: events.length, valid: prepared.valid.length }, 200)
  },
)

export default bench
