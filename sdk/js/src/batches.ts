import { MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_BEACON_BYTES } from '@adc/schemas/limits'
import type { Route } from './auth.js'
import type { QueuedEvent } from './types.js'

export interface Batch {
  /** Route path under the endpoint. */
  path: string
  events: QueuedEvent[]
  body: string
}

export function maxBodyBytes(route: Route): number {
  return route === 'beacon' ? MAX_BEACON_BYTES : MAX_BATCH_BYTES
}

const ENVELOPE_BYTES = '{"events":[]}'.length

/** On the beacon route every event says its type: `{"type":"impression",...}`. */
function wireJson(route: Route, e: QueuedEvent): string {
  return route === 'beacon' ? `{"type":"${e.type}",${e.json.slice(1)}` : e.json
}

/** Bytes an event takes in a body on this route (its JSON, its type tag, a comma). */
export function wireBytes(route: Route, e: QueuedEvent): number {
  return e.bytes + 1 + (route === 'beacon' ? `"type":"${e.type}",`.length : 0)
}

/** One body of `events` for `path` (every event's JSON as queued, so a resend is byte-identical per event). */
export function batchOf(route: Route, path: string, events: QueuedEvent[]): Batch {
  return { path, events, body: `{"events":[${events.map((e) => wireJson(route, e)).join(',')}]}` }
}

/**
 * Splits queued events into bodies the edge takes: at most 500 events and 1 MiB on the batch routes
 * (one route per event type), 64 KiB on the beacon route (types mixed). Order within a type is kept.
 * An event too large for any body is returned apart: it can never be sent.
 */
export function planBatches(route: Route, events: readonly QueuedEvent[], maxBytes = maxBodyBytes(route), maxEvents = MAX_BATCH_EVENTS): { batches: Batch[]; oversized: QueuedEvent[] } {
  const groups = new Map<string, QueuedEvent[]>()
  const oversized: QueuedEvent[] = []
  for (const e of events) {
    if (ENVELOPE_BYTES + wireBytes(route, e) > maxBytes) {
      oversized.push(e)
      continue
    }
    const path = route === 'beacon' ? '/v1/beacon' : `/v1/events/${e.type}s:batch`
    const list = groups.get(path) ?? []
    list.push(e)
    groups.set(path, list)
  }
  const batches: Batch[] = []
  for (const [path, list] of groups) {
    let current: QueuedEvent[] = []
    let size = ENVELOPE_BYTES
    const close = () => {
      if (current.length === 0) return
      batches.push(batchOf(route, path, current))
      current = []
      size = ENVELOPE_BYTES
    }
    for (const e of list) {
      const add = wireBytes(route, e)
      if (current.length >= maxEvents || size + add > maxBytes) close()
      current.push(e)
      size += add
    }
    close()
  }
  return { batches, oversized }
}
