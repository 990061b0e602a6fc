import { HTTPException } from 'hono/http-exception'
import { REASONS, type ReasonCode } from '@adc/schemas'

/** The body of every whole-request failure. */
export interface ErrorBody {
  error: { code: ReasonCode; message: string }
}

export function errorResponse(code: ReasonCode, message: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): Response {
  const status = (REASONS[code] as { status?: number }).status ?? 500
  return new Response(JSON.stringify({ error: { code, message }, ...extra }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  })
}

/**
 * A whole-request failure: thrown from middleware and handlers, answered by `app.onError` with
 * its prepared response (Hono's HTTPException carries it, see hono/src/http-exception.ts).
 */
export function fail(code: ReasonCode, message: string, headers?: Record<string, string>): HTTPException {
  const res = errorResponse(code, message, headers)
  return new HTTPException(res.status as 400, { res, message })
}
