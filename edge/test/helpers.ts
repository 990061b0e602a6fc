import { idempotencyKey, mintToken, signRequest, type EventType } from '@adc/schemas'
import { SELF } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { ulid } from 'ulid'
import { inject } from 'vitest'
import { dedupeShardOf, shardFor } from '../src/dedupe/shard.js'
import { dedupeKeyOf } from '../src/dedupe/dedupe-key.js'
import { settingsFrom } from '../src/settings.js'

/** Worker-side helpers for the edge tests: event factories and the fake REST proxy's controls. */
export const proxyUrl = (): string => inject('proxyUrl')

export interface ProxyMode {
  mode: 'ok' | 'fail500' | 'hang' | 'reject' | 'unauthorized' | 'slowAck'
  times?: number
  /** `slowAck`: how long after storing the answer leaves. @default 1000 */
  delayMs?: number
  rejectEvery?: number
  rejectCode?: number
}

export async function proxyControl(mode: ProxyMode): Promise<void> {
  const res = await fetch(`${proxyUrl()}/__control`, { method: 'POST', body: JSON.stringify(mode) })
  await res.arrayBuffer()
}

export async function proxyReset(): Promise<void> {
  const res = await fetch(`${proxyUrl()}/__reset`, { method: 'POST' })
  await res.arrayBuffer()
}

export interface ReceivedRecord {
  key: string
  value: Record<string, any>
}

export async function proxyReceived(topic = 'ad-events'): Promise<{ records: ReceivedRecord[]; calls: number; configCalls: number; unauthorized: number }> {
  const res = await fetch(`${proxyUrl()}/__received?topic=${encodeURIComponent(topic)}`)
  return res.json()
}

let seq = 0

export function impression(over: Record<string, unknown> = {}): Record<string, unknown> {
  seq++
  return {
    eventId: ulid(), ts: Date.now(), adId: 'ad_1', campaignId: 'cmp_1', publisherId: 'pub_test',
    requestId: `req_${seq}`, impressionId: `imp_${ulid()}`, ...over,
  }
}

export function click(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...impression(), clickId: `clk_${ulid()}`, ...over }
}

/**
 * A click with the click token its ad server mints for it (test key `k1`): what a public key's
 * click needs (the beacon route takes only the public key).
 */
export async function tokenedClick(over: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const c = click(over)
  const clickToken = await mintToken({
    impressionId: c.impressionId as string, campaignId: c.campaignId as string, adId: c.adId as string, publisherId: c.publisherId as string,
    requestId: c.requestId as string, exp: Math.floor(Date.now() / 1000) + 600, url: 'https://advertiser.example/l',
  }, 'k1', 'secret-one')
  return { ...c, clickToken }
}

export const EDGE = 'https://edge.test'

export function postBatch(kind: 'impressions' | 'clicks', body: unknown, opts: { key?: string | null; headers?: Record<string, string>; raw?: BodyInit } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cf-connecting-ip': '203.0.113.77', 'user-agent': 'Mozilla/5.0 test', ...opts.headers }
  if (opts.key !== null) headers.authorization = `Bearer ${opts.key ?? 'pk_test'}`
  return SELF.fetch(`${EDGE}/v1/events/${kind}:batch`, { method: 'POST', headers, body: opts.raw ?? JSON.stringify(body) })
}

/**
 * A batch signed with a request key (`X-Adc-Signature`): pub_test's `r1` is a server-scope key,
 * `a1` an app-scope one (test config in edge/vitest.config.ts).
 */
export async function signedBatch(kind: 'impressions' | 'clicks', body: unknown, opts: { keyId: string; secret: string; headers?: Record<string, string> }): Promise<Response> {
  const path = `/v1/events/${kind}:batch`
  const raw = JSON.stringify(body)
  const ts = Math.floor(Date.now() / 1000)
  const signature = await signRequest(opts.secret, ts, 'POST', path, raw)
  return SELF.fetch(`${EDGE}${path}`, {
    method: 'POST', body: raw,
    headers: {
      'content-type': 'application/json', 'cf-connecting-ip': '203.0.113.77', 'user-agent': 'Mozilla/5.0 test',
      'x-adc-key-id': opts.keyId, 'x-adc-timestamp': String(ts), 'x-adc-signature': signature, ...opts.headers,
    },
  })
}

/** Polls until `check` passes (waitUntil work finishes after the response). */
export async function eventually<T>(read: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const start = Date.now()
  for (;;) {
    const v = await read()
    if (check(v)) return v
    if (Date.now() - start > timeoutMs) return v
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Whether each event's key is confirmed in its shard (a 409 for it from now on). */
export async function dedupeConfirmed(type: EventType, events: Record<string, unknown>[], publisherId = 'pub_test'): Promise<boolean[]> {
  const shards = settingsFrom(env).dedupeShards
  return Promise.all(events.map(async (e) => {
    const key = dedupeKeyOf(e.eventId as string, await idempotencyKey(publisherId, type, e.eventId as string))
    const [held] = await shardFor(env, dedupeShardOf(publisherId, e.eventId as string, shards)).peek([key])
    return held!
  }))
}

/** Waits until the events' keys are confirmed: the batch route confirms them in waitUntil, after its answer. */
export async function confirmed(type: EventType, events: Record<string, unknown>[], publisherId = 'pub_test'): Promise<void> {
  const held = await eventually(() => dedupeConfirmed(type, events, publisherId), (s) => s.every(Boolean))
  if (!held.every(Boolean)) throw new Error(`keys not confirmed: ${held.join(', ')}`)
}
