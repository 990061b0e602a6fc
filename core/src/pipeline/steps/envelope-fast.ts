import { ID_PATTERN, ULID_PATTERN, UUIDV7_PATTERN, isCleanText, type Envelope } from '@adc/schemas'

/**
 * A conservative fast path for `envelopeSchema.safeParse`: answers the very envelope zod would
 * produce (same fields, same key order) when the input passes every check of the schema, written out
 * by hand; answers `undefined` whenever anything is unusual or wrong, and then zod decides (so a bad
 * record becomes the same bad row, with zod's reason and details). It only ever accepts a subset of
 * what zod accepts: event times given as ISO strings, `ua`/`ip` inside the event, unknown event keys
 * and any failed check all go to zod. A property test (envelope-fast.test.ts) holds it to that.
 *
 * Why: zod's generic machinery cost about 3.2 µs per event, this about a fifth of that.
 * Keep in step with schemas/src/envelope.ts and events.ts: a schema change that this file does not
 * know makes the fast path refuse (strict event keys) or the property test fail.
 */
export function fastEnvelope(json: unknown): Envelope | undefined {
  if (!isRecord(json) || json.v !== 1) return undefined
  const type = json.type
  if (type !== 'impression' && type !== 'click') return undefined
  const key = json.key
  if (typeof key !== 'string' || !DELIVERY_KEY.test(key)) return undefined
  const receivedAt = json.receivedAt
  if (!isNonNegativeInt(receivedAt) || receivedAt > MAX_TS) return undefined
  const edge = fastEdge(json.edge)
  if (!edge) return undefined
  const client = fastClient(json.client)
  if (!client) return undefined
  const event = fastEvent(json.event, type)
  if (!event) return undefined
  return { v: 1, key, receivedAt, edge, client, type, event } as Envelope
}

/** The envelope's own keys, in the schema's order. */
export const ENVELOPE_KEYS = ['v', 'key', 'receivedAt', 'edge', 'client', 'type', 'event'] as const

const DELIVERY_KEY = /^[0-9a-f]{32}$/
const GEO = /^[A-Z]{2}$/
const MAX_TS = 8.64e15

type Rec = Record<string, unknown>

function isRecord(x: unknown): x is Rec {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && Object.getPrototypeOf(x) === Object.prototype
}

function isNonNegativeInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}

/** Client text (schemas/src/text.ts): a lone surrogate or a control character is zod's to refuse. */
const optString = (x: unknown, max: number): boolean => x === undefined || (typeof x === 'string' && x.length <= max && isCleanText(x))
const optBoolean = (x: unknown): boolean => x === undefined || typeof x === 'boolean'
const isId = (x: unknown): x is string => typeof x === 'string' && ID_PATTERN.test(x)

/** Key lists in the schema's order: the test compares them with the schema's shapes. */
export const EDGE_KEYS = ['colo', 'country', 'asn', 'dedupe', 'source', 'prefetch', 'configVersion'] as const
const SOURCES = new Set(['batch', 'beacon', 'pixel', 'redirect', 's2s'])

function fastEdge(x: unknown): Rec | undefined {
  if (!isRecord(x)) return undefined
  if (x.dedupe !== 'new' && x.dedupe !== 'skipped') return undefined
  if (typeof x.source !== 'string' || !SOURCES.has(x.source)) return undefined
  if (!optString(x.colo, 16) || !optString(x.country, 2) || !optBoolean(x.prefetch)) return undefined
  if (x.asn !== undefined && !isNonNegativeInt(x.asn)) return undefined
  if (x.configVersion !== undefined && !isNonNegativeInt(x.configVersion)) return undefined
  const out: Rec = {}
  if (x.colo !== undefined) out.colo = x.colo
  if (x.country !== undefined) out.country = x.country
  if (x.asn !== undefined) out.asn = x.asn
  out.dedupe = x.dedupe
  out.source = x.source
  if (x.prefetch !== undefined) out.prefetch = x.prefetch
  if (x.configVersion !== undefined) out.configVersion = x.configVersion
  return out
}

export const CLIENT_KEYS = ['ua', 'ipPrefix', 'ipHash', 'uaHash'] as const

function fastClient(x: unknown): Rec | undefined {
  if (!isRecord(x)) return undefined
  if (!optString(x.ua, 1024) || !optString(x.ipPrefix, 64) || !optString(x.ipHash, 64) || !optString(x.uaHash, 64)) return undefined
  const out: Rec = {}
  if (x.ua !== undefined) out.ua = x.ua
  if (x.ipPrefix !== undefined) out.ipPrefix = x.ipPrefix
  if (x.ipHash !== undefined) out.ipHash = x.ipHash
  if (x.uaHash !== undefined) out.uaHash = x.uaHash
  return out
}

const COMMON_KEYS = ['eventId', 'ts', 'adId', 'campaignId', 'publisherId', 'requestId', 'impressionId', 'userKey', 'channel', 'device', 'geo', 'placement', 'consent']
export const IMPRESSION_KEYS: readonly string[] = [...COMMON_KEYS, 'viewable', 'viewMethod']
export const CLICK_KEYS: readonly string[] = [...COMMON_KEYS, 'clickId']
const IMPRESSION_KEY_SET = new Set(IMPRESSION_KEYS)
const CLICK_KEY_SET = new Set(CLICK_KEYS)
const CHANNELS = new Set(['web', 'app', 'ctv', 's2s'])
const DEVICES = new Set(['desktop', 'mobile', 'tablet', 'ctv', 'other'])
const VIEW_METHODS = new Set(['mrc_50_1s', 'mrc_30_1s', 'mrc_50_2s', 'client'])

function fastEvent(x: unknown, type: 'impression' | 'click'): Rec | undefined {
  if (!isRecord(x)) return undefined
  const allowed = type === 'impression' ? IMPRESSION_KEY_SET : CLICK_KEY_SET
  // The event schemas are strict: any other key (ua and ip included, which the envelope omits) is zod's to refuse.
  for (const k in x) if (!allowed.has(k)) return undefined
  if (typeof x.eventId !== 'string' || !(ULID_PATTERN.test(x.eventId) || UUIDV7_PATTERN.test(x.eventId))) return undefined
  // ISO-8601 times are transformed by zod: only epoch-ms numbers take the fast path.
  if (!isNonNegativeInt(x.ts) || x.ts > MAX_TS) return undefined
  if (!isId(x.adId) || !isId(x.campaignId) || !isId(x.publisherId) || !isId(x.requestId) || !isId(x.impressionId)) return undefined
  if (!optString(x.userKey, 128) || !optString(x.placement, 128) || !optBoolean(x.consent)) return undefined
  if (x.channel !== undefined && !(typeof x.channel === 'string' && CHANNELS.has(x.channel))) return undefined
  if (x.device !== undefined && !(typeof x.device === 'string' && DEVICES.has(x.device))) return undefined
  if (x.geo !== undefined && !(typeof x.geo === 'string' && GEO.test(x.geo))) return undefined
  if (type === 'impression') {
    if (!optBoolean(x.viewable)) return undefined
    if (x.viewMethod !== undefined && !(typeof x.viewMethod === 'string' && VIEW_METHODS.has(x.viewMethod))) return undefined
  } else if (!isId(x.clickId)) return undefined
  // Written out in the schema's key order (zod's output order); envelope-fast.test.ts checks it.
  const out: Rec = { eventId: x.eventId, ts: x.ts, adId: x.adId, campaignId: x.campaignId, publisherId: x.publisherId, requestId: x.requestId, impressionId: x.impressionId }
  if (x.userKey !== undefined) out.userKey = x.userKey
  if (x.channel !== undefined) out.channel = x.channel
  if (x.device !== undefined) out.device = x.device
  if (x.geo !== undefined) out.geo = x.geo
  if (x.placement !== undefined) out.placement = x.placement
  if (x.consent !== undefined) out.consent = x.consent
  if (type === 'impression') {
    if (x.viewable !== undefined) out.viewable = x.viewable
    if (x.viewMethod !== undefined) out.viewMethod = x.viewMethod
  } else out.clickId = x.clickId
  return out
}
