import { REASONS, type ReasonCode } from '@adc/schemas'
import { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Logger } from 'pino'

/** Every error answer of the API: `{ error: { code, message } }`, code from `schemas/src/reasons.ts`. */
export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'invalid_query' }),
      message: z.string().openapi({ example: 'from: must be an ISO 8601 time or epoch milliseconds' }),
    }),
  })
  .openapi('Error')

/** A whole-request failure with its reason code; the status comes from the reason registry. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode
  constructor(
    readonly code: ReasonCode,
    message: string,
  ) {
    super(message)
    this.name = 'ApiError'
    this.status = ((REASONS[code] as { status?: number }).status ?? 500) as ContentfulStatusCode
  }
}

/**
 * What any `/v1` route may answer before it runs: 413 (a body over API_MAX_BODY_BYTES) and 429 (an
 * advertiser's or publisher's key over its request budget, api/key-limit.ts).
 */
const EVERY_ROUTE = [413, 429]

/** Error responses for route definitions, so `/openapi.json` documents them (413 and 429 on every route). */
export function errorResponses(...statuses: number[]) {
  const out: Record<number, { description: string; content: { 'application/json': { schema: typeof ErrorSchema } } }> = {}
  for (const s of [...statuses, ...EVERY_ROUTE]) {
    out[s] = { description: `Error (${s})`, content: { 'application/json': { schema: ErrorSchema } } }
  }
  return out
}

function codeForHttpException(err: HTTPException): ReasonCode {
  switch (err.status) {
    case 400:
      return /json/i.test(err.message) ? 'invalid_body' : 'invalid_query'
    case 401:
      return 'unauthorized'
    case 403:
      return 'forbidden'
    case 404:
      return 'not_found'
    case 413:
      return 'payload_too_large'
    case 415:
      return 'unsupported_media_type'
    default:
      return err.status >= 500 ? 'internal_error' : 'invalid_query'
  }
}

/** ClickHouse's TIMEOUT_EXCEEDED (code 159), from `max_execution_time` in the query's SETTINGS. */
function isQueryTimeout(err: Error): boolean {
  const code = (err as { code?: unknown }).code
  return code === '159' || code === 159 || /TIMEOUT_EXCEEDED/.test(err.message)
}

export function createErrorHandler(logger: Logger) {
  return function onError(err: Error, c: Context): Response {
    if (err instanceof ApiError) {
      return c.json({ error: { code: err.code, message: err.message } }, err.status)
    }
    if (err instanceof HTTPException) {
      const code = codeForHttpException(err)
      return c.json({ error: { code, message: err.message || code } }, err.status as ContentfulStatusCode)
    }
    if (isQueryTimeout(err)) {
      logger.warn({ path: c.req.path, method: c.req.method }, 'query timed out')
      c.header('Retry-After', '5')
      return c.json({ error: { code: 'query_timeout', message: 'the query ran past its time limit; narrow the range or retry' } }, 503)
    }
    logger.error({ err, path: c.req.path, method: c.req.method }, 'api request failed')
    return c.json({ error: { code: 'internal_error', message: 'internal error; the request can be retried' } }, 500)
  }
}

/**
 * Turns a zod failure into one short sentence (`field: message; ...`), never the raw zod dump.
 */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ')
}
