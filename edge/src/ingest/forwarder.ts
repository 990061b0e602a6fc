/**
 * Produce to a Kafka REST Proxy v2 (`POST {base}/topics/{topic}`), honouring every record's
 * `error_code`. Response shapes follow Confluent's kafka-rest and Karapace: a missing or null
 * `error_code` is success, 2 is retriable, 1 (or anything else) is not; Karapace answers 422 with
 * per-record codes when only some records failed, so the offsets array is read whatever the status.
 */
import { BINARY_V2_CONTENT_TYPE, V2_CONTENT_TYPE, type ReasonCode } from '@adc/schemas'
import type { Settings } from '../settings.js'

export interface ProxyRecord {
  key: string
  value: unknown
}

export type RecordOutcome = 'ok' | 'retriable' | 'fatal'

export interface ProduceOptions {
  baseUrl: string
  timeoutMs: number
  /** HTTP Basic credentials, sent on every call (core's gateway and Confluent's proxy with BASIC auth). */
  auth: { user: string; password: string }
  fetcher?: typeof fetch
}

/** The proxy options of the Worker's settings: every caller (routes and the Spool) sends the same credentials. */
export function proxyOptions(s: Pick<Settings, 'restProxyUrl' | 'restProxyUser' | 'restProxyPassword' | 'proxyTimeoutMs'>): ProduceOptions {
  return { baseUrl: s.restProxyUrl, timeoutMs: s.proxyTimeoutMs, auth: { user: s.restProxyUser, password: s.restProxyPassword } }
}

/** `Basic base64(user:password)` over the UTF-8 bytes (RFC 7617 with charset="UTF-8"). */
export function basicAuthorization({ user, password }: { user: string; password: string }): string {
  let binary = ''
  for (const b of new TextEncoder().encode(`${user}:${password}`)) binary += String.fromCharCode(b)
  return `Basic ${btoa(binary)}`
}

/**
 * The binary embedded format: key and value travel as base64 of their exact bytes, so Confluent's
 * proxy and core's gateway write the same key bytes and partition alike (schemas/src/rest-proxy-wire.ts).
 */
export const REST_PROXY_CONTENT_TYPE = BINARY_V2_CONTENT_TYPE

const ASCII = /^[\x00-\x7f]*$/
const encoder = new TextEncoder()

/**
 * Standard base64 of a text's UTF-8 bytes. ASCII text (nearly every envelope: JSON escapes no
 * control character into raw bytes and most agents are ASCII) is its own Latin-1, so `btoa` takes
 * it as it is; other text is encoded first and passed to `btoa` a chunk of bytes at a time
 * (`apply` over a typed array: spreading one costs about 25 µs per 600-byte record).
 */
export function base64OfText(text: string): string {
  if (ASCII.test(text)) return btoa(text)
  const bytes = encoder.encode(text)
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x2000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x2000) as unknown as number[])
  return btoa(binary)
}

/**
 * The produce body: `{"records":[{"key","value"}]}` with base64 keys (UTF-8) and values (UTF-8
 * JSON), the exact text `JSON.stringify` of schemas' `binaryRecord`s gives (base64 needs no
 * escaping), written directly.
 */
export function produceBody(records: ProxyRecord[]): string {
  let out = '{"records":['
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!
    out += `${i > 0 ? ',' : ''}{"key":"${base64OfText(r.key)}","value":"${base64OfText(JSON.stringify(r.value))}"}`
  }
  return `${out}]}`
}

function outcomeOf(code: unknown): RecordOutcome {
  if (code === null || code === undefined) return 'ok'
  return code === 2 ? 'retriable' : 'fatal'
}

/** One produce call; never throws. Transport failures, timeouts and 5xx mark every record retriable. */
export async function produce(topic: string, records: ProxyRecord[], opts: ProduceOptions): Promise<RecordOutcome[]> {
  if (records.length === 0) return []
  const all = (o: RecordOutcome) => records.map(() => o)
  let res: Response
  try {
    res = await (opts.fetcher ?? fetch)(`${opts.baseUrl.replace(/\/$/, '')}/topics/${encodeURIComponent(topic)}`, {
      method: 'POST',
      headers: {
        'content-type': REST_PROXY_CONTENT_TYPE,
        accept: `${V2_CONTENT_TYPE}, application/json`,
        authorization: basicAuthorization(opts.auth),
      },
      body: produceBody(records),
      signal: AbortSignal.timeout(opts.timeoutMs),
    })
  } catch {
    return all('retriable')
  }
  let body: unknown
  try {
    body = await res.json()
  } catch {
    body = undefined
  }
  const offsets = (body as { offsets?: unknown } | undefined)?.offsets
  if (Array.isArray(offsets) && offsets.length === records.length && (res.ok || res.status === 422)) {
    return offsets.map((o) => outcomeOf((o as { error_code?: unknown } | null)?.error_code))
  }
  if (res.status === 401 || res.status === 403) {
    // Wrong or missing credentials will not fix themselves within this request: the records are
    // fatal here (they go to the Spool, which keeps retrying them), and an operator must see it.
    console.error(JSON.stringify({
      level: 'error', reason: 'proxy_unauthorized' satisfies ReasonCode, status: res.status, topic, records: records.length,
      message: 'the REST proxy refused the edge credentials: check REST_PROXY_USER and REST_PROXY_PASSWORD',
    }))
    return all('fatal')
  }
  if (res.status >= 500 || res.status === 429 || res.status === 408) return all('retriable')
  // A 2xx without a readable offsets array proves nothing was written: retry it.
  if (res.ok) return all('retriable')
  return all('fatal')
}

export interface ForwardResult<T> {
  delivered: T[]
  /** Not delivered after all attempts, each with its last outcome: these go to the Spool. */
  undelivered: { item: T; outcome: Exclude<RecordOutcome, 'ok'> }[]
  attempts: number
}

export interface ForwardOptions extends ProduceOptions {
  attempts: number
  /** Delay before attempt n (n ≥ 1); kept short: the client is waiting. @default 50·3^(n-1) ms */
  backoffMs?: (attempt: number) => number
}

/**
 * Sends items as one produce call, then retries only the retriable leftovers, in their order.
 * Fatal records are not retried here (the Spool keeps them with their reason).
 */
export async function forward<T>(topic: string, items: T[], toRecord: (item: T) => ProxyRecord, opts: ForwardOptions): Promise<ForwardResult<T>> {
  const delivered: T[] = []
  const fatal: T[] = []
  let pending = items
  let attempts = 0
  while (pending.length > 0 && attempts < opts.attempts) {
    if (attempts > 0) {
      // A retried attempt may repeat records the last one stored without acknowledging them in time:
      // the same envelopes reach the log again, which core keeps as duplicate_delivery and its
      // accounting counts once (logCopies). Logged so the rate of such copies can be followed.
      console.warn(JSON.stringify({ level: 'warn', reason: 'produce_retried' satisfies ReasonCode, topic, attempt: attempts + 1, records: pending.length }))
      await new Promise((r) => setTimeout(r, (opts.backoffMs ?? ((n) => 50 * 3 ** (n - 1)))(attempts)))
    }
    attempts++
    const outcomes = await produce(topic, pending.map(toRecord), opts)
    const retry: T[] = []
    pending.forEach((item, i) => {
      const o = outcomes[i]
      if (o === 'ok') delivered.push(item)
      else if (o === 'fatal') fatal.push(item)
      else retry.push(item)
    })
    pending = retry
  }
  // Undelivered items keep their original order, so the Spool replays them in order.
  const order = new Map(items.map((item, i) => [item, i]))
  const undelivered = [
    ...pending.map((item) => ({ item, outcome: 'retriable' as const })),
    ...fatal.map((item) => ({ item, outcome: 'fatal' as const })),
  ].sort((a, b) => order.get(a.item)! - order.get(b.item)!)
  return { delivered, undelivered, attempts }
}
