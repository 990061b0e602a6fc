/**
 * Test events: deterministic ids, envelopes and log records for any test or benchmark that feeds the
 * processor, and a traffic mix with its expected totals.
 * Imported by tests and benchmarks only.
 */
import { createHash } from 'node:crypto'
import { encodeTime } from 'ulid'
import type { EdgeStatsRecord, EnvelopeInput } from '@adc/schemas'
import type { ProducerRecord } from '../log/log.js'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** A valid, deterministic ULID-shaped id for test event number `n`. */
export function ulidFor(n: number, salt = 0): string {
  let s = ''
  let v = BigInt(n) * 1_000_003n + BigInt(salt)
  for (let i = 0; i < 16; i++) {
    s = CROCKFORD[Number(v % 32n)]! + s
    v /= 32n
  }
  return '01JD' + '0'.repeat(6) + s
}

/** The delivery idempotency key as schemas/keys.ts computes it (synchronous node:crypto here). */
export function deliveryKeyOf(publisherId: string, type: 'impression' | 'click', eventId: string): string {
  return createHash('sha256').update([publisherId, type, eventId].join('\u001f')).digest('hex').slice(0, 32)
}

export const BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

export interface TestEventInput {
  type: 'impression' | 'click'
  n: number
  /** @default ulidFor(n): every such id carries the same time */
  eventId?: string
  impressionId: string
  ts: number
  receivedAt?: number
  campaignId?: string
  publisherId?: string
  channel?: 'web' | 'app' | 'ctv' | 's2s'
  ua?: string | null
  ipPrefix?: string
  userKey?: string
  prefetch?: boolean
  geo?: string
  /** The tenant config version the edge checked the event against (`edge.configVersion`); @default none, as before edges stamped it */
  configVersion?: number
}

/** A valid v1 envelope as the edge writes it. */
export function testEnvelope(i: TestEventInput): EnvelopeInput {
  const publisherId = i.publisherId ?? 'pub_demo'
  const eventId = i.eventId ?? ulidFor(i.n)
  const event = {
    eventId,
    ts: i.ts,
    adId: 'ad_1',
    campaignId: i.campaignId ?? (i.type === 'click' ? 'cmp_demo_cpc' : 'cmp_demo_cpm'),
    publisherId,
    requestId: `req_${i.n}`,
    impressionId: i.impressionId,
    channel: i.channel ?? 'web',
    device: 'desktop' as const,
    geo: i.geo ?? 'US',
    ...(i.userKey ? { userKey: i.userKey } : {}),
    ...(i.type === 'click' ? { clickId: `clk_${i.n}` } : {}),
  }
  return {
    v: 1,
    type: i.type,
    key: deliveryKeyOf(publisherId, i.type, eventId),
    receivedAt: i.receivedAt ?? i.ts + 50,
    edge: { dedupe: 'new', source: 'batch', colo: 'AMS', country: 'NL', ...(i.prefetch ? { prefetch: true } : {}), ...(i.configVersion !== undefined ? { configVersion: i.configVersion } : {}) },
    client: { ...(i.ua === null ? {} : { ua: i.ua ?? BROWSER_UA }), ipPrefix: i.ipPrefix ?? `198.51.${i.n % 200}.0/24`, ipHash: `h${i.n % 5000}` },
    event,
  } as EnvelopeInput
}

export function toRecord(env: EnvelopeInput): ProducerRecord {
  return { key: env.event.impressionId, value: JSON.stringify(env) }
}

/** A ULID of time `ms` whose random part is test event number `n`'s (ulidFor): ids as clients make them. */
export const timedUlidFor = (ms: number, n: number): string => encodeTime(ms, 10) + ulidFor(n).slice(10)

/** A UUIDv4-shaped id drawn from a hash of `name`: looks random, sorts randomly, is reproducible. */
function uuidFor(name: string): string {
  const h = createHash('sha256').update(name).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

/**
 * A reproducible traffic mix: per impression one impression record and (every third) one click a
 * few seconds later; every 10th event delivered twice (edge retry). Returns the records and the
 * counts a correct processor must end with.
 *
 * `spacingMs`: event time between two impressions. `timedIds`: event ids carry their event's time
 * (`timedUlidFor`), as a client's ULIDs do, so delivery keys fall into the hours of their events
 * (state/delivery-index.ts); otherwise every id carries one time (`ulidFor`). `randomImpressionIds`:
 * impression ids in a random-looking UUID form (a hash of the seed and the impression's number, so
 * still reproducible), as many ad servers send them, instead of `imp_<seed>_<i>`, whose keys sort
 * nearly in arrival order.
 */
export function trafficMix(count: number, { start = Date.UTC(2026, 10, 23, 12, 0, 0), seed = 0, spacingMs = 20, timedIds = false, randomImpressionIds = false } = {}): { records: ProducerRecord[]; expected: { impressions: number; clicks: number; duplicates: number } } {
  const records: ProducerRecord[] = []
  let impressions = 0
  let clicks = 0
  let duplicates = 0
  let n = seed * 10_000_000
  for (let i = 0; records.length < count; i++) {
    const impressionId = randomImpressionIds ? uuidFor(`${seed}:${i}`) : `imp_${seed}_${i}`
    const ts = start + i * spacingMs
    const id = (at: number): { n: number; eventId?: string } => {
      const k = n++
      return timedIds ? { n: k, eventId: timedUlidFor(at, k) } : { n: k }
    }
    const imp = testEnvelope({ type: 'impression', ...id(ts), impressionId, ts, userKey: `u${i % 997}` })
    records.push(toRecord(imp))
    impressions++
    if (i % 10 === 0) {
      records.push(toRecord(imp))
      duplicates++
    }
    if (i % 3 === 0) {
      records.push(toRecord(testEnvelope({ type: 'click', ...id(ts + 5_000), impressionId, ts: ts + 5_000, userKey: `u${i % 997}` })))
      clicks++
    }
  }
  return { records, expected: { impressions, clicks, duplicates } }
}

/**
 * An edge-stats record as the edge writes it: what it counted for one publisher in one minute (all
 * `accepted` unless told), keyed by the publisher.
 */
export function edgeStatsRecord(r: { batchId: string; publisherId?: string; minute: number } & Partial<Pick<EdgeStatsRecord, 'received' | 'accepted' | 'duplicate' | 'rejected' | 'rejectedByReason'>>): ProducerRecord {
  const publisherId = r.publisherId ?? 'pub_demo'
  const accepted = r.accepted ?? r.received ?? 0
  const value: EdgeStatsRecord = {
    v: 1, kind: 'edge_stats', batchId: r.batchId, publisherId, minute: r.minute,
    received: r.received ?? accepted, accepted, duplicate: r.duplicate ?? 0, rejected: r.rejected ?? 0, rejectedByReason: r.rejectedByReason ?? {},
  }
  return { key: publisherId, value: JSON.stringify(value) }
}
