/**
 * The second half of ingest: dedupes prepared events at their shards, forwards the new ones to the
 * REST proxy, spools what the proxy did not take and confirms the durable events' keys.
 */
import { EVENTS_TOPIC } from '@adc/schemas'
import type { Env } from '../env.js'
import { buildEnvelope } from './envelope.js'
import { forward, proxyOptions, type ProxyRecord } from './forwarder.js'
import type { EventResult, Prepared, Valid } from './prepare.js'
import type { Settings } from '../settings.js'
import { shardFor } from '../dedupe/shard.js'
import { ConfirmBatcher } from '../dedupe/confirm-batcher.js'
import { spoolFor } from './spool-stub.js'

export interface CommitOutcome {
  results: EventResult[]
  counts: { received: number; accepted: number; duplicate: number; rejected: number }
  /** false when some events were neither delivered nor spooled (the answer is 503). */
  durable: boolean
  delivered: number
  spooled: number
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    }),
  ]).finally(() => {
    if (timer !== undefined) clearTimeout(timer)
  })
}

export interface CommitOptions {
  /**
   * Where the confirm RPCs go once the events are durable: given `ctx.waitUntil`, the keys join
   * this isolate's pending confirms (`ConfirmBatcher`), sent after the answer, at most
   * `confirmFlushMs` later, one call per shard for every request of that interval. Safe because an
   * unconfirmed key is judged new: a retry that arrives before its confirm lands is forwarded again
   * and core's exact dedupe drops it, and a 409 still only ever answers an event that is stored.
   * @default awaited inline, one call per shard of this request
   */
  later?: (work: Promise<void>) => void
}

/**
 * Dedupes (one check RPC per shard touched), forwards the new events as one REST proxy call, spools
 * whatever the proxy did not take, reports the durable ones accepted and confirms their keys (one
 * RPC per shard, inline or in `opts.later`). When neither proxy nor Spool works, the events are
 * reported `failed` and their keys stay unconfirmed, so the client's retry is not called a duplicate.
 */
export async function commit(prepared: Prepared, env: Env, settings: Settings, opts: CommitOptions = {}): Promise<CommitOutcome> {
  const { ctx, results, valid } = prepared
  const byShard = new Map<number, Valid[]>()
  for (const v of valid) {
    const list = byShard.get(v.shard)
    if (list) list.push(v)
    else byShard.set(v.shard, [v])
  }
  const verdict = new Map<Valid, 'new' | 'duplicate' | 'skipped'>()
  // Keys this isolate stored whose confirm has not landed yet answer here: an immediate retry is
  // still a duplicate (ConfirmBatcher).
  const pending = opts.later ? pendingConfirmsFor(env.DEDUPE_SHARD) : undefined
  await Promise.all([...byShard].map(async ([shard, all]) => {
    const list: Valid[] = []
    for (const v of all) {
      if (pending?.has(v.dedupeKey)) verdict.set(v, 'duplicate')
      else list.push(v)
    }
    if (list.length === 0) return
    try {
      const answers = await withTimeout(shardFor(env, shard).check(list.map((v) => v.dedupeKey)), settings.dedupeTimeoutMs)
      list.forEach((v, i) => verdict.set(v, answers[i] === 'duplicate' ? 'duplicate' : 'new'))
    } catch {
      // A slow or failing shard must not block the events: core's exact dedupe catches repeats.
      for (const v of list) verdict.set(v, 'skipped')
    }
  }))

  const toSend: { v: Valid; record: ProxyRecord }[] = []
  const factsMemo = new Map()
  // Every event was checked against this config in prepare: the envelope names its version.
  const envelopeCtx = { ...ctx, configVersion: ctx.tenants.config.version }
  for (const v of valid) {
    const d = verdict.get(v)!
    if (d === 'duplicate') {
      results[v.index] = { index: v.index, eventId: v.event.eventId, status: 'duplicate', code: 'duplicate_delivery', httpStatus: 409, message: 'this event was already accepted' }
      continue
    }
    const envelope = await buildEnvelope({ type: v.type, event: v.event, key: v.key, dedupe: d }, envelopeCtx, settings.ipHashSecret, factsMemo)
    toSend.push({ v, record: { key: v.event.impressionId, value: envelope } })
  }

  const sent = await forward(EVENTS_TOPIC, toSend, (x) => x.record, { ...proxyOptions(settings), attempts: settings.forwardAttempts })
  let durable = true
  let spooled = 0
  const lost = new Set<Valid>()
  if (sent.undelivered.length > 0) {
    try {
      const r = await spoolFor(env, ctx.publisher.id).enqueue(sent.undelivered.map(({ item }) => ({ topic: EVENTS_TOPIC, ...item.record })))
      spooled = r.spooled
    } catch {
      // Their keys are never confirmed, so the client's retry is judged new, not a duplicate.
      durable = false
      for (const { item } of sent.undelivered) lost.add(item.v)
    }
  }
  const durableKeys = byShardOf(toSend.map((x) => x.v).filter((v) => !lost.has(v) && verdict.get(v) === 'new'))
  if (pending && opts.later) {
    for (const [shard, keys] of durableKeys) pending.add(shard, keys)
    opts.later(pending.flush(settings.confirmFlushMs, (shard, keys) => withTimeout(shardFor(env, shard).confirm(keys), settings.dedupeTimeoutMs)))
  } else {
    await confirmKeys(env, durableKeys, settings.dedupeTimeoutMs)
  }
  for (const { v } of toSend) {
    results[v.index] = lost.has(v)
      ? { index: v.index, eventId: v.event.eventId, status: 'failed', code: 'upstream_unavailable', httpStatus: 503, message: 'the event could not be stored; retry it' }
      : { index: v.index, eventId: v.event.eventId, status: 'accepted' }
  }
  const counts = { received: results.length, accepted: 0, duplicate: 0, rejected: 0 }
  for (const r of results) {
    if (r.status === 'accepted') counts.accepted++
    else if (r.status === 'duplicate') counts.duplicate++
    else if (r.status === 'rejected') counts.rejected++
  }
  return { results, counts, durable, delivered: sent.delivered.length, spooled }
}

/** This isolate's dedupe keys waiting to be confirmed (see `ConfirmBatcher`), per shard namespace. */
const pendingConfirms = new WeakMap<object, ConfirmBatcher>()

function pendingConfirmsFor(namespace: object): ConfirmBatcher {
  let b = pendingConfirms.get(namespace)
  if (!b) {
    b = new ConfirmBatcher()
    pendingConfirms.set(namespace, b)
  }
  return b
}

function byShardOf(list: Valid[]): Map<number, string[]> {
  const byShard = new Map<number, string[]>()
  for (const v of list) {
    const keys = byShard.get(v.shard)
    if (keys) keys.push(v.dedupeKey)
    else byShard.set(v.shard, [v.dedupeKey])
  }
  return byShard
}

/**
 * Confirms durable events' keys (one RPC per shard touched). A failure here is harmless: the keys
 * stay unconfirmed, a retry of those events is forwarded again and core's exact dedupe drops it.
 */
async function confirmKeys(env: Env, byShard: Map<number, string[]>, timeoutMs: number): Promise<void> {
  await Promise.all([...byShard].map(async ([shard, keys]) => {
    try {
      await withTimeout(shardFor(env, shard).confirm(keys), timeoutMs)
    } catch {
      // unconfirmed keys are safe; see above
    }
  }))
}
