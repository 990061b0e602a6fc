/**
 * What every ingest route reads from a request: a batch body's events, and the client and edge
 * facts the envelope records.
 */
import { batchBodySchema, MAX_BATCH_EVENTS } from '@adc/schemas'
import type { Context } from 'hono'
import type { AppEnv } from '../context.js'
import { edgeFactsFrom } from './envelope.js'
import { fail } from '../errors.js'

/** Parses `{"events":[...]}`: 400 invalid_batch for a wrong shape, 413 for more than 500 events. */
export function parseBatch(body: unknown): unknown[] {
  const events = (body as { events?: unknown } | null)?.events
  if (Array.isArray(events) && events.length > MAX_BATCH_EVENTS) {
    throw fail('payload_too_large', `a batch holds at most ${MAX_BATCH_EVENTS} events; this one has ${events.length}`)
  }
  const parsed = batchBodySchema.safeParse(body)
  if (!parsed.success) throw fail('invalid_batch', 'the body must be {"events":[...]} with 1 to 500 events')
  return parsed.data.events
}

/** The request facts every ingest path records. */
export function requestFacts(c: Context<AppEnv>) {
  return {
    observed: { ua: c.req.header('user-agent'), ip: c.req.header('cf-connecting-ip') },
    edge: edgeFactsFrom((c.req.raw as { cf?: unknown }).cf),
  }
}
