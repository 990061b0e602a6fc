/**
 * The edge Worker: mounts the routes, exports the Durable Object classes (dedupe, spool, rate limit)
 * and answers every failure as `{ error: { code, message } }`.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { AppEnv } from './context.js'
import { errorResponse } from './errors.js'
import { SettingsError } from './settings.js'
import beacon from './routes/beacon.js'
import bench from './routes/bench.js'
import click from './routes/click.js'
import events from './routes/events.js'
import health from './routes/health.js'
import internal from './routes/internal.js'
import pixel from './routes/pixel.js'
import tag from './routes/tag.js'

export { DedupeShard } from './dedupe/dedupe-shard.js'
export { RateLimiter } from './rate-limit/rate-limiter.js'
export { Spool } from './ingest/spool.js'

export const app = new Hono<AppEnv>()

// Every answer is dated by the edge's clock: the SDKs put their events' ts and request signatures
// on it (the Date of an answer the edge wrote). Cloudflare dates responses at its front; a local
// runtime (workerd under wrangler dev) does not, and an answer without Date tells the SDK nothing.
app.use('*', async (c, next) => {
  await next()
  if (c.res.headers.has('date')) return
  const date = new Date().toUTCString()
  try {
    c.res.headers.set('date', date)
  } catch {
    // Immutable headers (Response.redirect): the same answer, dated.
    const res = new Response(c.res.body, c.res)
    res.headers.set('date', date)
    c.res = res
  }
})

app.route('/', health)
app.route('/', events)
app.route('/', beacon)
app.route('/', pixel)
app.route('/', click)
app.route('/', tag)
app.route('/', internal)
app.route('/', bench)

app.notFound(() => errorResponse('not_found', 'no such route'))

// Every failure answers { error: { code, message } }; an unexpected one is logged and is a 500
// the client may retry (nothing was acknowledged).
app.onError((err, c) => {
  if (err instanceof HTTPException) return err.getResponse()
  if (err instanceof SettingsError) {
    console.error('edge misconfigured', err.message)
    return errorResponse('edge_misconfigured', err.message, { 'retry-after': '30' })
  }
  console.error('unhandled edge error', c.req.method, new URL(c.req.url).pathname, err)
  return errorResponse('internal_error', 'unexpected error; the request can be retried')
})

export default app
