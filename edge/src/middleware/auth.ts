/**
 * Authentication middleware: resolves the publisher and what the credential may send (server key,
 * public key, or a request signature by a server-scope or an app-scope key).
 */
import { partitionFor } from '@adc/schemas'
import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../context.js'
import { sha256Hex } from '../crypto.js'
import { fail } from '../errors.js'
import { shardFor } from '../dedupe/shard.js'
import { checkSignature, SIGNATURE_HEADERS, SIGNATURE_WINDOW_SECONDS } from '../tenants/signing.js'

export interface AuthenticateOptions {
  /** Where the API key may come from. @default 'header' (Authorization: Bearer) */
  keyFrom?: 'header' | 'query'
  /** Whether HMAC request signing is accepted. @default true */
  allowSignature?: boolean
}

/**
 * Resolves the publisher and the credential's scope (`server_key`, `public_key`, or
 * `request_signature`/`app_signature` by the request key's scope; what each may send is decided per event in `prepare`) from an API key (compared by SHA-256 against the tenant config, so the
 * edge never holds the keys themselves) or from an HMAC request signature, whose signature is then
 * remembered in a DedupeShard so a replay is refused. Runs after `readBody` (the signature covers
 * the body).
 */
export function authenticate({ keyFrom = 'header', allowSignature = true }: AuthenticateOptions = {}) {
  return createMiddleware<AppEnv>(async function authenticate(c, next) {
    const tenants = c.var.tenants
    const keyId = c.req.header(SIGNATURE_HEADERS.keyId)
    if (allowSignature && keyId !== undefined) {
      const now = Date.now()
      const check = await checkSignature({
        keyId, timestamp: c.req.header(SIGNATURE_HEADERS.timestamp), signature: c.req.header(SIGNATURE_HEADERS.signature),
        method: c.req.method, path: new URL(c.req.url).pathname, bodySha256: await sha256Hex(c.var.rawBody),
      }, tenants, now)
      if (!check.ok) throw fail(check.code, check.message)
      const signature = c.req.header(SIGNATURE_HEADERS.signature)!
      const shard = shardFor(c.env, partitionFor(signature, c.var.settings.dedupeShards))
      let fresh: boolean
      try {
        const expiresAt = (Number(c.req.header(SIGNATURE_HEADERS.timestamp)) + SIGNATURE_WINDOW_SECONDS) * 1000 + 60_000
        fresh = await shard.rememberSignature(signature, expiresAt)
      } catch {
        // Fail closed: without the replay memory a captured request could be replayed.
        throw fail('upstream_unavailable', 'signature replay check is unavailable; retry with a new signature', { 'retry-after': '1' })
      }
      if (!fresh) throw fail('signature_replayed', 'this request signature was already used; sign each request anew')
      c.set('publisher', check.publisher)
      c.set('authMethod', 'signature')
      // An app key's secret ships inside every copy of the app: its signature proves no more than
      // the public key does (ingest/prepare.ts, ingest/envelope.ts, rate-limit/client-limit.ts).
      c.set('credential', check.scope === 'server' ? 'request_signature' : 'app_signature')
      return next()
    }
    const key = keyFrom === 'query' ? c.req.query('k') : /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1]
    if (!key) throw fail('unauthorized', keyFrom === 'query' ? 'the publisher key is missing (?k=)' : 'Authorization: Bearer <publisher key> is required')
    const found = await tenants.byApiKey(key)
    if (!found) throw fail('unauthorized', 'unknown publisher key')
    if (!found.publisher.active) throw fail('forbidden', 'the publisher is not active')
    // A URL is kept by server logs, proxies and browser history: only the public key (made to be
    // read in page HTML) may travel there. A server key in ?k= is refused, not used.
    if (keyFrom === 'query' && found.scope !== 'public') {
      throw fail('forbidden', 'a server key never goes in a URL: send it as Authorization: Bearer (and rotate this one), or use the publisher\'s public key (pkpub_...) in ?k=')
    }
    c.set('publisher', found.publisher)
    c.set('authMethod', 'api_key')
    c.set('credential', found.scope === 'public' ? 'public_key' : 'server_key')
    await next()
  })
}
