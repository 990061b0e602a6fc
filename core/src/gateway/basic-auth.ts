import type { MiddlewareHandler } from 'hono'
import { V2_CONTENT_TYPE } from '@adc/schemas'
import { sameSecret } from '../secrets.js'

export interface BasicCredentials {
  user: string
  password: string
}

/** Reads `Authorization: Basic base64(user:password)` (RFC 7617); undefined when absent or malformed. */
export function parseBasic(header: string | undefined): BasicCredentials | undefined {
  if (!header) return undefined
  const m = /^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i.exec(header)
  if (!m) return undefined
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/**
 * HTTP Basic authentication for the REST proxy gateway, answering like Confluent's REST proxy with
 * `authentication.method=BASIC`: 401, `WWW-Authenticate: Basic`, and the proxy's error body
 * `{ error_code: 40101, message }`. The edge sends the same header to either proxy.
 * @example
 * app.use('/topics/*', restProxyBasicAuth({ user: 'edge', password: secret }))
 */
export function restProxyBasicAuth(expected: BasicCredentials, { realm = 'adc-rest-proxy' }: { realm?: string } = {}): MiddlewareHandler {
  return async function restProxyAuth(c, next) {
    const given = parseBasic(c.req.header('authorization'))
    // Both halves are compared every time (no short circuit), so timing does not tell which was wrong.
    const userOk = sameSecret(given?.user ?? '', expected.user)
    const passwordOk = sameSecret(given?.password ?? '', expected.password)
    if (given === undefined || !(userOk && passwordOk)) {
      return new Response(JSON.stringify({ error_code: 40101, message: 'Unauthorized: send Authorization: Basic with the REST proxy credentials.' }), {
        status: 401,
        headers: { 'content-type': V2_CONTENT_TYPE, 'www-authenticate': `Basic realm="${realm}", charset="UTF-8"` },
      })
    }
    await next()
  }
}
