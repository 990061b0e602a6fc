import type { QueueStorage } from './storage/storage.js'
import type { QueuedEvent } from './types.js'

export interface QueueOptions {
  /** Most events kept; past it the oldest is shed. @default 1000 */
  maxEvents?: number
  /** Told about each shed event. */
  onShed?: (event: QueuedEvent) => void
}

export interface Queue {
  /** Reads the stored snapshot; call once before anything else. */
  load(): Promise<void>
  /** Adds events; resolves once a snapshot holding them is stored. */
  push(events: QueuedEvent[]): Promise<void>
  /** The oldest events, in order (not removed). */
  peek(limit?: number): QueuedEvent[]
  /** Removes events by id; resolves once stored. */
  remove(eventIds: Iterable<string>): Promise<void>
  /** Puts new versions of queued events in their places (an event no longer queued is left out); resolves once stored. */
  replace(updated: readonly QueuedEvent[]): Promise<void>
  readonly size: number
  readonly bytes: number
  /** Events shed by the cap since this queue was created. */
  readonly shed: number
}

interface Snapshot {
  v: 1
  events: QueuedEvent[]
}

function parseSnapshot(text: string | null): QueuedEvent[] {
  if (text === null || text === '') return []
  try {
    const snap = JSON.parse(text) as Partial<Snapshot>
    if (snap.v !== 1 || !Array.isArray(snap.events)) return []
    return snap.events.filter((e): e is QueuedEvent =>
      !!e && (e.type === 'impression' || e.type === 'click') && typeof e.eventId === 'string' && typeof e.json === 'string' && typeof e.bytes === 'number')
  } catch {
    return []
  }
}

/**
 * One snapshot holding every event of `snapshots` once (by id), in their order: how a tab takes over
 * the queues other tabs left behind. Null when none holds an event.
 */
export function mergeSnapshots(snapshots: ReadonlyArray<string | null>): string | null {
  const seen = new Set<string>()
  const events: QueuedEvent[] = []
  for (const text of snapshots) {
    for (const e of parseSnapshot(text)) {
      if (seen.has(e.eventId)) continue
      seen.add(e.eventId)
      events.push(e)
    }
  }
  return events.length === 0 ? null : JSON.stringify({ v: 1, events })
}

/**
 * The persistent queue: an ordered list in memory, mirrored to storage. Writes are coalesced: while
 * one is in flight, later changes wait and go out together in the next, so a burst of events costs
 * two writes, and every `push` resolves only once a snapshot holding its events is stored.
 */
export function createQueue(storage: QueueStorage, { maxEvents = 1000, onShed }: QueueOptions = {}): Queue {
  let events: QueuedEvent[] = []
  let bytes = 0
  let shed = 0
  let writing: Promise<void> | null = null
  let queued: Promise<void> | null = null
  // Each event's snapshot record, serialized once: a snapshot is then one join, not a deep stringify.
  const records = new Map<string, string>()
  const recordOf = (e: QueuedEvent) => {
    let r = records.get(e.eventId)
    if (r === undefined) {
      r = JSON.stringify(e)
      records.set(e.eventId, r)
    }
    return r
  }

  function persist(): Promise<void> {
    if (storage.durable === false) return Promise.resolve()
    if (queued) return queued
    const previous = writing
    const next = (async () => {
      // Always yields first, so `queued` is set before it is cleared below.
      await previous?.catch(() => undefined)
      queued = null
      const write = storage.write(`{"v":1,"events":[${events.map(recordOf).join(',')}]}`)
      writing = write
      await write
    })()
    queued = next
    return next
  }

  return {
    async load() {
      const loaded = parseSnapshot(await storage.read())
      const ids = new Set(events.map((e) => e.eventId))
      events = [...loaded.filter((e) => !ids.has(e.eventId)), ...events]
      bytes = events.reduce((n, e) => n + e.bytes, 0)
    },
    push(added) {
      for (const e of added) {
        events.push(e)
        bytes += e.bytes
      }
      while (events.length > maxEvents) {
        const dropped = events.shift()!
        bytes -= dropped.bytes
        records.delete(dropped.eventId)
        shed++
        onShed?.(dropped)
      }
      return persist()
    },
    peek(limit = events.length) {
      return events.slice(0, limit)
    },
    remove(eventIds) {
      const gone = new Set(eventIds)
      if (gone.size === 0) return Promise.resolve()
      events = events.filter((e) => !gone.has(e.eventId))
      for (const id of gone) records.delete(id)
      bytes = events.reduce((n, e) => n + e.bytes, 0)
      return persist()
    },
    replace(updated) {
      const byId = new Map(updated.map((e) => [e.eventId, e]))
      let changed = false
      events = events.map((e) => {
        const next = byId.get(e.eventId)
        if (next === undefined) return e
        changed = true
        records.delete(e.eventId)
        return next
      })
      if (!changed) return Promise.resolve()
      bytes = events.reduce((n, e) => n + e.bytes, 0)
      return persist()
    },
    get size() {
      return events.length
    },
    get bytes() {
      return bytes
    },
    get shed() {
      return shed
    },
  }
}
