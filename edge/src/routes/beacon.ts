import { MAX_BEACON_BYTES, type EventType } from '@adc/schemas'
import { Hono } from 'hono'
import type { AppEnv } from '../context.js'
import { deliverLater } from '../ingest/deliver.js'
import { prepare, type IncomingItem } from '../ingest/prepare.js'
import { authenticate } from '../middleware/auth.js'
import { parseJsonBody, readBody } from '../middleware/body.js'
import { enforceRateLimit } from '../rate-limit/budget.js'
import { loadTenants } from '../middleware/tenants.js'
import { parseBatch, requestFacts } from '../ingest/request.js'
import { receiveTime } from '../ingest/receive-time.js'

/** Splits `{type, ...event}`: the type picks the schema, the rest is the event. */
export function typedItem(raw: unknown): IncomingItem {
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const { type, ...event } = raw as { type?: unknown }
    if (type === 'impression' || type === 'click') return { type: type as EventType, raw: event }
  }
  return { type: null, raw }
}

const beacon = new Hono<AppEnv>()

/**
 * `POST /v1/beacon?k=<public key>` (a server key in the URL is refused: middleware/auth.ts):
 * `navigator.sendBeacon` sends `text/plain` (a CORS-safelisted
 * type, so no preflight), which the route parses itself. Validation answers at once (202 with
 * per-event `queued`/`rejected`); delivery runs in waitUntil with the Spool as fallback.
 */
beacon.post(
  '/v1/beacon',
  loadTenants(),
  // sendBeacon bodies are capped by browsers at 64 KiB (MAX_BEACON_BYTES); the route refuses more.
  readBody({ maxBytes: MAX_BEACON_BYTES, mediaTypes: ['text/plain', 'application/json'] }),
  authenticate({ keyFrom: 'query', allowSignature: false }),
  async function beaconHandler(c) {
    const receivedAt = receiveTime()
    const events = parseBatch(parseJsonBody(c.var.rawBody))
    const facts = requestFacts(c)
    await enforceRateLimit(c.env, c.var.settings, c.var.publisher, c.var.credential, events.length, facts.observed.ip)
    const prepared = await prepare(events.map(typedItem), { publisher: c.var.publisher, credential: c.var.credential, tenants: c.var.tenants, source: 'beacon', receivedAt, ...facts }, c.var.settings)
    deliverLater(c.executionCtx, c.env, c.var.settings, prepared)
    const queued = prepared.results.filter((r) => r.status === 'queued').length
    return c.json({ received: events.length, queued, rejected: events.length - queued, results: prepared.results }, 202, {
      // The SDK sets its events' ts on the edge's clock, learnt from Date, which a page on another
      // origin reads only when exposed (it is not a CORS-safelisted response header).
      'cache-control': 'no-store', 'access-control-allow-origin': '*', 'access-control-expose-headers': 'date',
    })
  },
)

export default beacon
