/**
 * `GET /tag.js`: the browser tag (edge/src/tag/tag-source.ts).
 */
import { Hono } from 'hono'
import type { AppEnv } from '../context.js'
import { TAG_SOURCE } from '../tag/tag-source.js'

const tag = new Hono<AppEnv>()

/** `GET /tag.js`: the browser tag (edge/src/tag/tag-source.ts), cacheable for five minutes. */
tag.get('/tag.js', (c) =>
  c.body(TAG_SOURCE, 200, { 'content-type': 'application/javascript; charset=utf-8', 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' }))

export default tag
