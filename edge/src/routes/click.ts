/**
 * `GET|HEAD /c/<token>`: the click redirect; records the click and sends the browser on.
 */
import { REASON_HEADER } from '@adc/schemas'
import { Hono } from 'hono'
import { ulid } from 'ulid'
import type { AppEnv } from '../context.js'
import { deliverLater } from '../ingest/deliver.js'
import { prepare } from '../ingest/prepare.js'
import { checkToken } from '../tokens/token-check.js'
import { prefetchKind } from '../tokens/prefetch.js'
import { eventFromToken } from '../tokens/token-events.js'
import { settingsFrom } from '../settings.js'
import { takeEvents } from '../rate-limit/budget.js'
import { takeClientShare } from '../rate-limit/client-limit.js'
import { tenantsFor } from '../tenants/tenants.js'
import { requestFacts } from '../ingest/request.js'
import { receiveTime } from '../ingest/receive-time.js'

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)

/** The page a bad link shows. It never contains a link or a redirect (no open redirect). */
function errorPage(status: 400 | 410 | 422 | 503, title: string, detail: string, code: string): Response {
  const html = `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="robots" content="noindex">` +
    `<title>${escapeHtml(title)}</title><body style="font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto">` +
    `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p><p><small>Reason: ${escapeHtml(code)}</small></p></body></html>`
  return new Response(html, { status, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-robots-tag': 'noindex', [REASON_HEADER]: code } })
}

const click = new Hono<AppEnv>()

/**
 * `GET|HEAD /c/<token>`: 302 to the token's landing URL with `clickId` appended, recording the click
 * in waitUntil. HEAD, prefetch/prerender and link scanners get the same redirect, but their event is
 * marked `edge.prefetch = true` so core keeps it as `prefetch_click`, never billed. A click spends
 * one event of the publisher's rate limit; a click over the limit still redirects (a person
 * clicking an ad must reach the page) but is not recorded, like any refused event, and the
 * redirect says so in `X-Adc-Reason: rate_limited`. So does a click over its client address's share
 * (rate-limit/client-limit.ts), with `X-Adc-Reason: client_rate_limited`.
 */
click.get('/c/:token', async function clickHandler(c) {
  const settings = settingsFrom(c.env)
  let tenants
  try {
    tenants = await tenantsFor(c.env)
  } catch {
    // A person is waiting: an HTML page, not JSON, and still never a redirect to an unverified URL.
    return errorPage(503, 'Please try again', 'This link cannot be checked right now. Please try again in a moment.', 'upstream_unavailable')
  }
  const token = c.req.param('token')
  const receivedAt = receiveTime()
  const verified = await checkToken(token, tenants, Math.floor(receivedAt / 1000))
  if (!verified.ok) {
    if (verified.code === 'token_expired') return errorPage(410, 'This link has expired', 'The ad link you followed is no longer valid.', verified.code)
    // A validly signed link for a campaign nobody booked: no redirect (its URL was never paid for).
    if (verified.code === 'unknown_campaign') return errorPage(422, 'This ad is not running', 'The ad you clicked is not running, so this link leads nowhere.', verified.code)
    return errorPage(400, 'This link is not valid', 'The ad link you followed is damaged or was not issued by us.', verified.code)
  }
  const { payload, publisher } = verified
  if (payload.url === undefined) {
    return errorPage(400, 'This link is not valid', 'The ad link you followed is damaged or was not issued by us.', 'invalid_token')
  }
  const clickId = ulid(receivedAt)
  const location = new URL(payload.url)
  location.searchParams.set('clickId', clickId)
  const headers: Record<string, string> = { location: location.toString(), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer-when-downgrade' }
  const facts = requestFacts(c)
  // The client's share first: a client looping on a click link spends none of the publisher's budget.
  if (!(await takeClientShare(c.env, 'token', publisher.id, facts.observed.ip, 1))) {
    return new Response(null, { status: 302, headers: { ...headers, [REASON_HEADER]: 'client_rate_limited' } })
  }
  const limit = await takeEvents(c.env, settings, publisher, 'token', 1)
  if (!limit.ok) return new Response(null, { status: 302, headers: { ...headers, [REASON_HEADER]: 'rate_limited' } })
  const prefetch = prefetchKind(c.req.raw) !== undefined
  const raw = eventFromToken(payload, ulid(receivedAt), receivedAt, { clickId })
  const prepared = await prepare([{ type: 'click', raw }], { publisher, credential: 'token', tenants, source: 'redirect', receivedAt, prefetch, ...facts }, settings)
  deliverLater(c.executionCtx, c.env, settings, prepared)
  return new Response(null, { status: 302, headers })
})

export default click
