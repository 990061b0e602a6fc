/**
 * Body middleware: checks the media type and reads the body within the size limit.
 */
import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../context.js'
import { fail } from '../errors.js'

export interface ReadBodyOptions {
  /** Largest body accepted, in bytes. */
  maxBytes: number
  /** Media types accepted (compared without parameters, case-insensitive). */
  mediaTypes: readonly string[]
}

/**
 * Checks the media type (415) and reads the body into `c.var.rawBody`, refusing more than
 * `maxBytes` (413) both from Content-Length and while streaming: a chunked body has no length.
 */
export function readBody({ maxBytes, mediaTypes }: ReadBodyOptions) {
  return createMiddleware<AppEnv>(async function readBody(c, next) {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
    if (!mediaTypes.includes(type)) {
      throw fail('unsupported_media_type', `Content-Type must be ${mediaTypes.join(' or ')}`)
    }
    const declared = Number(c.req.header('content-length') ?? '0')
    if (declared > maxBytes) throw fail('payload_too_large', `the body exceeds ${maxBytes} bytes`)
    const body = c.req.raw.body
    const chunks: Uint8Array[] = []
    let total = 0
    if (body) {
      const reader = body.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        total += value.byteLength
        if (total > maxBytes) {
          await reader.cancel()
          throw fail('payload_too_large', `the body exceeds ${maxBytes} bytes`)
        }
        chunks.push(value)
      }
    }
    const bytes = new Uint8Array(total)
    let at = 0
    for (const ch of chunks) {
      bytes.set(ch, at)
      at += ch.byteLength
    }
    c.set('rawBody', bytes)
    await next()
  })
}

/** Decodes the body as UTF-8 JSON; 400 bad_json on invalid UTF-8 or JSON. */
export function parseJsonBody(bytes: Uint8Array): unknown {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    throw fail('bad_json', 'the body is not valid UTF-8')
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw fail('bad_json', `the body is not valid JSON${err instanceof SyntaxError ? `: ${err.message.slice(0, 120)}` : ''}`)
  }
}
