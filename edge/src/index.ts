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
