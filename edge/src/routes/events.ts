/**
 * `POST /v1/events/{impressions,clicks}:batch`: the batch API (prepare, commit, answer per event),
 * and `POST /v1/events/validate-signature`.
 */
import { MAX_BATCH_BYTES, partitionFor, type EventType } from '@adc/schemas'
import { Hono } from 'hono'
import { z } from 'zod'
import type { AppEnv } from '../context.js'
import { sha256Hex } from '../crypto.js'
import { parseBatch, requestFacts } from '../ingest/request.js'
import { errorResponse, fail } from '../errors.js'
import { commit } from '../ingest/commit.js'
import { prepare } from '../ingest/prepare.js'
import { shardFor } from '../dedupe/shard.js'
import { sendStats } from '../ingest/stats-batcher.js'
import { checkSignature, SIGNATURE_HEADERS } from '../tenants/signing.js'
import { checkToken } from '../tokens/token-check.js'
import { authenticate } from '../middleware/auth.js'
import { parseJsonBody, readBody } from '../middleware/body.js'
import { enforceRateLimit } from '../rate-limit/budget.js'
import { loadTenants } from '../middleware/tenants.js'
import { receiveTime } from '../ingest/receive-time.js'

const BATCH_ROUTES: Record<string, EventType> = { 'impressions:batch': 'impression', 'clicks:batch': 'click' }

const batch = new Hono<AppEnv>()

for (const [action, type] of Object.entries(BATCH_ROUTES)) batch.post(
  `/v1/events/${action}`,
  loadTenants(),
  readBody({ maxBytes: MAX_BATCH_BYTES, mediaTypes: ['application/json'] }),
  authenticate(),
  async function batchHandler(c) {
    const receivedAt = receiveTime()
    const events = parseBatch(parseJsonBody(c.var.rawBody))
    const publisher = c.var.publisher
    const facts = requestFacts(c)
    await enforceRateLimit(c.env, c.var.settings, publisher, c.var.credential, events.length, facts.observed.ip)
    const prepared = await prepare(events.map((raw) => ({ type, raw })), { publisher, credential: c.var.credential, tenants: c.var.tenants, source: 'batch', receivedAt, ...facts }, c.var.settings)
    const outcome = await commit(prepared, c.env, c.var.settings, { later: (work) => c.executionCtx.waitUntil(work) })
    c.executionCtx.waitUntil(sendStats(c.env, c.var.settings, publisher.id, outcome.results, receivedAt))
    const body = { ...outcome.counts, results: outcome.results }
    if (!outcome.durable) {
      return errorResponse('upstream_unavailable', 'some events could neither be forwarded nor spooled; retry the failed ones', { 'retry-after': '1' }, body)
    }
    return c.json(body, 202, { 'cache-control': 'no-store' })
  },
)

const validateBodySchema = z.union([
  z.object({ token: z.string() }),
  z.object({
    keyId: z.string(), timestamp: z.union([z.string(), z.number()]), signature: z.string(),
    method: z.string().max(16), path: z.string().max(2048), bodySha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
])

/**
 * `POST /v1/events/validate-signature`: lets a publisher check its signing without sending events.
 * Body `{"token": "v1...."}` checks a pixel/click token; body `{keyId, timestamp, signature, method,
 * path, bodySha256}` checks a request signature computed for another request; an empty body with
 * the X-Adc-* headers checks this request's own signature (without using it up). Always 200 with
 * `{valid, reason?, message}` unless the request itself is malformed.
 */
batch.post(
  '/v1/events/validate-signature',
  loadTenants(),
  readBody({ maxBytes: 64 * 1024, mediaTypes: ['application/json', ''] }),
  async function validateSignature(c) {
    const tenants = c.var.tenants
    const now = Date.now()
    const raw = c.var.rawBody
    if (raw.byteLength === 0) {
      const check = await checkSignature({
        keyId: c.req.header(SIGNATURE_HEADERS.keyId), timestamp: c.req.header(SIGNATURE_HEADERS.timestamp), signature: c.req.header(SIGNATURE_HEADERS.signature),
        method: c.req.method, path: new URL(c.req.url).pathname, bodySha256: await sha256Hex(raw),
      }, tenants, now)
      if (!check.ok) return c.json({ valid: false, reason: check.code, message: check.message })
      const sig = c.req.header(SIGNATURE_HEADERS.signature)!
      const used = await shardFor(c.env, partitionFor(sig, c.var.settings.dedupeShards)).signatureUsed(sig).catch(() => false)
      if (used) return c.json({ valid: false, reason: 'signature_replayed', message: 'this signature was already used' })
      return c.json({ valid: true, kind: 'request', keyId: check.keyId, publisherId: check.publisher.id, message: 'signature is valid' })
    }
    const parsed = validateBodySchema.safeParse(parseJsonBody(raw))
    if (!parsed.success) throw fail('invalid_batch', 'send {"token": "..."} or {keyId, timestamp, signature, method, path, bodySha256}')
    const input = parsed.data
    if ('token' in input) {
      const result = await checkToken(input.token, tenants, Math.floor(now / 1000))
      if (!result.ok) return c.json({ valid: false, kind: 'token', reason: result.code, message: result.message, ...(result.keyId ? { keyId: result.keyId } : {}) })
      return c.json({ valid: true, kind: 'token', keyId: result.keyId, publisherId: result.publisher.id, payload: result.payload, message: 'token is valid' })
    }
    const check = await checkSignature({ ...input, timestamp: String(input.timestamp) }, tenants, now)
    if (!check.ok) return c.json({ valid: false, kind: 'request', reason: check.code, message: check.message })
    return c.json({ valid: true, kind: 'request', keyId: check.keyId, publisherId: check.publisher.id, message: 'signature is valid' })
  },
)

export default batch
