import { REASON_HEADER } from '@adc/schemas'
import { Hono } from 'hono'
import type { AppEnv } from '../context.js'
import { deliverLater } from '../ingest/deliver.js'
import { errorResponse } from '../errors.js'
import { prepare } from '../ingest/prepare.js'
import { DEDUPE_TTL_MS } from '../dedupe/dedupe-shard.js'
import { checkToken } from '../tokens/token-check.js'
import { prefetchKind } from '../tokens/prefetch.js'
import { eventFromToken, eventIdFromToken } from '../tokens/token-events.js'
import { enforceRateLimit } from '../rate-limit/budget.js'
import { loadTenants } from '../middleware/tenants.js'
import { requestFacts } from '../ingest/request.js'
import { receiveTime } from '../ingest/receive-time.js'

/** The smallest transparent GIF (43 bytes): 1x1, one transparent palette entry. */
export const GIF_1X1 = Uint8Array.from([
  0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21,
  0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44,
  0x01, 0x00, 0x3b,
])

const NO_STORE = 'no-store, no-cache, must-revalidate, max-age=0'

const pixel = new Hono<AppEnv>()

/**
 * `GET /v1/pixel.gif?t=<token>[&consent=0]`: answers the GIF at once and records the impression in
 * waitUntil. The event id comes from the token, so a reload is the same event: counted once within
 * the dedupe horizon (24 h, as every event), which for a token valid at most 25 h is its whole life; a
 * longer-lived token reloaded more than 24 h after a sighting is counted again, as any impression is.
 * Because the first load of a token is its impression, a HEAD or a link scanner (a mail gateway or a
 * crawler fetching the page's images first) gets the GIF and records nothing (`X-Adc-Reason:
 * prefetch_pixel`): recorded, it would take the id, and the person's own load after it would be a
 * duplicate, never billed. A prerender's load is recorded: the page shows it without loading it again.
 */
pixel.get('/v1/pixel.gif', loadTenants(), async function pixelHandler(c) {
  const tenants = c.var.tenants
  const token = c.req.query('t') ?? ''
  const receivedAt = receiveTime()
  const verified = await checkToken(token, tenants, Math.floor(receivedAt / 1000))
  if (!verified.ok) return errorResponse(verified.code, verified.message, { 'cache-control': NO_STORE })
  const { publisher } = verified
  const gif = (headers: Record<string, string> = {}) =>
    c.body(GIF_1X1, 200, { 'content-type': 'image/gif', 'cache-control': NO_STORE, pragma: 'no-cache', 'content-length': String(GIF_1X1.byteLength), ...headers })
  const kind = prefetchKind(c.req.raw)
  if (kind === 'head' || kind === 'link_scanner') return gif({ [REASON_HEADER]: 'prefetch_pixel' })
  const facts = requestFacts(c)
  await enforceRateLimit(c.env, c.var.settings, publisher, 'token', 1, facts.observed.ip)
  // The id, derived from the token, carries a time fixed by the token: 24 h before it expires, so
  // the shard keeps the key (in its time-ordered table) as long as a reload of a token valid at most
  // 25 h can come (a longer-lived token's key goes to the random-key table; see above).
  const dedupeTimeMs = verified.payload.exp * 1000 - DEDUPE_TTL_MS
  // Keyed by the token's signing secret (known to be there: the token just verified under it).
  const eventId = await eventIdFromToken(token, 'impression', dedupeTimeMs, tenants.secretFor(verified.keyId)!)
  const consent = c.req.query('consent') === '0' ? { consent: false } : {}
  const raw = eventFromToken(verified.payload, eventId, receivedAt, consent)
  const prepared = await prepare([{ type: 'impression', raw, dedupeTimeMs }], { publisher, credential: 'token', tenants, source: 'pixel', receivedAt, ...facts }, c.var.settings)
  deliverLater(c.executionCtx, c.env, c.var.settings, prepared)
  return gif()
})

export default pixel
