/**
 * `GET /healthz`: liveness.
 */
import { Hono } from 'hono'
import type { AppEnv } from '../context.js'

const health = new Hono<AppEnv>()

/** Liveness only, and the bench's hello-world baseline: no config, no storage. */
health.get('/healthz', (c) => c.json({ ok: true }))

export default health
