import { UUIDV7_PATTERN, channelSchema, dedupeOutcomeSchema, deviceSchema, edgeFactsSchema, viewMethodSchema, type Envelope } from '@adc/schemas'

/**
 * The decode step's common case in one pass over the record's text: the envelope that
 * `JSON.parse` followed by `envelopeSchema.safeParse` would give (same fields, same values, the
 * schema's key order), read straight from the JSON text, or `undefined` when the text is anything
 * but the plain form the edge writes, and then JSON.parse and the schema decide as before.
 *
 * Why: JSON.parse builds a generic object tree (every key looked up in V8's string table, every value
 * a fresh string) that the checks then copy into the envelope; on the processor's records that was
 * about 4 µs of the decode step's 5.5 per event. This reads each field once, checks it as the schema
 * would, and builds only the envelope.
 *
 * It accepts only a subset of what the schema accepts, each case written so its answer is the
 * schema's (envelope-scan.test.ts holds it to JSON.parse + zod on generated and mutated records):
 * - no whitespace outside strings; every key of the schema at most once; no key the schema does not
 *   name (the envelope, edge and client objects would strip it, the event refuses it: both are
 *   JSON.parse's and zod's to judge);
 * - strings of printable ASCII only (U+0020 to U+007E) and no escape: then the JSON text between
 *   the quotes is the string, and it is clean text (no control character, no surrogate);
 * - numbers as non-negative integers without sign, fraction or exponent, at most 16 digits, safe;
 * - `true`, `false`; no `null` (no field of the schema is nullable);
 * - the event's `ts` as epoch milliseconds (the schema turns ISO text into them: zod's case).
 *
 * Its strings are cuts of the record's text (`slice`): from 13 characters on, V8 keeps such a cut as a
 * pointer into the whole text, which it keeps alive. Whatever keeps a field past its event (the IVT
 * caches, the burst counters' keys) keeps `detachedText(field)` (schemas/src/text.ts) instead.
 */
export function scanEnvelope(s: string): Envelope | undefined {
  const n = s.length
  if (n < 2 || s.charCodeAt(0) !== OPEN || s.charCodeAt(n - 1) !== CLOSE) return undefined
  let seen = 0
  let key = ''
  let receivedAt = 0
  let type = ''
  let edge: Rec | undefined
  let client: Rec | undefined
  let i = 1
  for (;;) {
    if (s.charCodeAt(i) !== QUOTE) return undefined
    const k = i + 1
    const ke = end(s, k, TEXT)
    if (ke < 0 || s.charCodeAt(ke + 1) !== COLON) return undefined
    const v = ke + 2
    let bit: number
    switch (ke - k) {
      case 1: // v
        if (s.charCodeAt(k) !== 0x76 || s.charCodeAt(v) !== 0x31) return undefined
        i = v + 1
        bit = 1
        break
      case 3: // key
        if (!is(s, k, 'key') || s.charCodeAt(v) !== QUOTE || end(s, v + 1, HEX) !== v + 33) return undefined
        key = s.slice(v + 1, v + 33)
        i = v + 34
        bit = 2
        break
      case 10: // receivedAt
        if (!is(s, k, 'receivedAt') || (receivedAt = intAt(s, v)) < 0 || receivedAt > MAX_TS) return undefined
        i = at
        bit = 4
        break
      case 4: // edge, type
        if (is(s, k, 'edge')) {
          if (!(edge = scanEdge(s, v))) return undefined
          i = at
          bit = 8
        } else if (is(s, k, 'type')) {
          if (s.charCodeAt(v) !== QUOTE) return undefined
          const e = end(s, v + 1, TEXT)
          if (e === v + 11 && is(s, v + 1, 'impression')) type = 'impression'
          else if (e === v + 6 && is(s, v + 1, 'click')) type = 'click'
          else return undefined
          i = e + 1
          bit = 16
        } else return undefined
        break
      case 6: // client
        if (!is(s, k, 'client') || !(client = scanClient(s, v))) return undefined
        i = at
        bit = 32
        break
      case 5: // event
        if (!is(s, k, 'event') || !scanEvent(s, v)) return undefined
        i = at
        bit = 64
        break
      default:
        return undefined
    }
    if (seen & bit) return undefined
    seen |= bit
    const c = s.charCodeAt(i)
    if (c === COMMA) i++
    else if (c === CLOSE && i === n - 1) break
    else return undefined
  }
  if (seen !== 127) return undefined
  const event = finishEvent(type)
  if (!event) return undefined
  return { v: 1, key, receivedAt, edge: edge!, client: client!, type, event } as Envelope
}

type Rec = Record<string, unknown>

const OPEN = 0x7b
const CLOSE = 0x7d
const QUOTE = 0x22
const COLON = 0x3a
const COMMA = 0x2c
const MAX_TS = 8.64e15

/** Character classes by code unit below 0x80: printable ASCII but `"` and `\` (TEXT), ID_PATTERN's, lowercase hex, ULID_PATTERN's. */
const TEXT = 1
const ID = 2
const HEX = 4
const ULID = 8
const CLASS = new Uint8Array(128)
for (let c = 0x20; c < 0x7f; c++) if (c !== QUOTE && c !== 0x5c) CLASS[c]! |= TEXT
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-') CLASS[c.charCodeAt(0)]! |= ID
for (const c of '0123456789abcdef') CLASS[c.charCodeAt(0)]! |= HEX
for (const c of '0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz') CLASS[c.charCodeAt(0)]! |= ULID

/** Where the last value read (intAt, strAt, boolAt, the objects) ended: the index after it. */
let at = 0

/**
 * The index of the quote that closes a string whose first character is at `i`, when every
 * character before it is of `cls` (so printable ASCII, no escape); -1 otherwise.
 */
function end(s: string, i: number, cls: number): number {
  const n = s.length
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c === QUOTE) return i
    if (c >= 0x80 || (CLASS[c]! & cls) === 0) return -1
  }
  return -1
}

/** Whether `lit` is at `i` (the caller knows the lengths agree). */
function is(s: string, i: number, lit: string): boolean {
  for (let j = 0; j < lit.length; j++) if (s.charCodeAt(i + j) !== lit.charCodeAt(j)) return false
  return true
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39

/** A non-negative integer at `i` (no sign, fraction or exponent; at most 16 digits; safe), ending at `at`; -1 otherwise. */
function intAt(s: string, i: number): number {
  let c = s.charCodeAt(i)
  if (!isDigit(c)) return -1
  let v = c - 0x30
  const start = i++
  if (v !== 0) {
    for (; ; i++) {
      c = s.charCodeAt(i)
      if (!isDigit(c)) break
      v = v * 10 + (c - 0x30)
    }
  } else c = s.charCodeAt(i)
  if (c === 0x2e || c === 0x65 || c === 0x45 || isDigit(c) || i - start > 16 || !Number.isSafeInteger(v)) return -1
  at = i
  return v
}

/** A string at `i` (its opening quote) of 1 to `max` characters of `cls` (0 to `max` for TEXT), ending at `at`; undefined otherwise. */
function strAt(s: string, i: number, max: number, cls: number): string | undefined {
  if (s.charCodeAt(i) !== QUOTE) return undefined
  const e = end(s, i + 1, cls)
  const len = e - i - 1
  if (e < 0 || len > max || (len === 0 && cls !== TEXT)) return undefined
  at = e + 1
  return s.slice(i + 1, e)
}

/** `true` or `false` at `i`, ending at `at`; undefined otherwise. */
function boolAt(s: string, i: number): boolean | undefined {
  const c = s.charCodeAt(i)
  if (c === 0x74 && is(s, i, 'true')) {
    at = i + 4
    return true
  }
  if (c === 0x66 && is(s, i, 'false')) {
    at = i + 5
    return false
  }
  return undefined
}

/** One of `options` as a string at `i`, ending at `at`; undefined otherwise. */
function oneOf(s: string, i: number, options: readonly string[]): string | undefined {
  if (s.charCodeAt(i) !== QUOTE) return undefined
  const e = end(s, i + 1, TEXT)
  const len = e - i - 1
  for (const o of options) {
    if (o.length === len && is(s, i + 1, o)) {
      at = e + 1
      return o
    }
  }
  return undefined
}

/**
 * The start of the next key of an object (after `{` or `,`), with its length in `keyLength`
 * and its value's start in `at`; -1 when the object ended (its end in `at`) or is not of the plain form (-2).
 */
let keyLength = 0
function nextKey(s: string, i: number, first: boolean): number {
  const c = s.charCodeAt(i)
  if (c === CLOSE) {
    at = i + 1
    return -1
  }
  if (first ? c !== QUOTE : c !== COMMA || s.charCodeAt(++i) !== QUOTE) return -2
  const ke = end(s, i + 1, TEXT)
  if (ke < 0 || s.charCodeAt(ke + 1) !== COLON) return -2
  keyLength = ke - i - 1
  at = ke + 2
  return i + 1
}

/** The schema's enumerations: a value the schema adds is read here too. */
const DEDUPE = dedupeOutcomeSchema.options
const SOURCES = edgeFactsSchema.shape.source.options
const CHANNELS = channelSchema.options
const DEVICES = deviceSchema.options
const VIEW_METHODS = viewMethodSchema.options

/** The edge's facts at `i` (its `{`), in the schema's key order, ending at `at`. */
function scanEdge(s: string, i: number): Rec | undefined {
  if (s.charCodeAt(i) !== OPEN) return undefined
  let seen = 0
  let colo: string | undefined
  let country: string | undefined
  let asn = 0
  let dedupe: string | undefined
  let source: string | undefined
  let prefetch: boolean | undefined
  let configVersion = 0
  for (let k = nextKey(s, i + 1, true); k !== -1; k = nextKey(s, at, false)) {
    if (k < 0) return undefined
    const v = at
    let bit: number
    switch (keyLength) {
      case 4:
        if (!is(s, k, 'colo') || (colo = strAt(s, v, 16, TEXT)) === undefined) return undefined
        bit = 1
        break
      case 7:
        if (!is(s, k, 'country') || (country = strAt(s, v, 2, TEXT)) === undefined) return undefined
        bit = 2
        break
      case 3:
        if (!is(s, k, 'asn') || (asn = intAt(s, v)) < 0) return undefined
        bit = 4
        break
      case 6:
        if (is(s, k, 'dedupe')) {
          if ((dedupe = oneOf(s, v, DEDUPE)) === undefined) return undefined
          bit = 8
        } else if (is(s, k, 'source')) {
          if ((source = oneOf(s, v, SOURCES)) === undefined) return undefined
          bit = 16
        } else return undefined
        break
      case 8:
        if (!is(s, k, 'prefetch') || (prefetch = boolAt(s, v)) === undefined) return undefined
        bit = 32
        break
      case 13:
        if (!is(s, k, 'configVersion') || (configVersion = intAt(s, v)) < 0) return undefined
        bit = 64
        break
      default:
        return undefined
    }
    if (seen & bit) return undefined
    seen |= bit
  }
  if ((seen & 24) !== 24) return undefined
  const out: Rec = {}
  if (seen & 1) out.colo = colo
  if (seen & 2) out.country = country
  if (seen & 4) out.asn = asn
  out.dedupe = dedupe
  out.source = source
  if (seen & 32) out.prefetch = prefetch
  if (seen & 64) out.configVersion = configVersion
  return out
}

/** The client's facts at `i`, in the schema's key order, ending at `at`. */
function scanClient(s: string, i: number): Rec | undefined {
  if (s.charCodeAt(i) !== OPEN) return undefined
  let seen = 0
  let ua: string | undefined
  let ipPrefix: string | undefined
  let ipHash: string | undefined
  let uaHash: string | undefined
  for (let k = nextKey(s, i + 1, true); k !== -1; k = nextKey(s, at, false)) {
    if (k < 0) return undefined
    const v = at
    let bit: number
    if (keyLength === 2 && is(s, k, 'ua')) {
      if ((ua = strAt(s, v, 1024, TEXT)) === undefined) return undefined
      bit = 1
    } else if (keyLength === 8 && is(s, k, 'ipPrefix')) {
      if ((ipPrefix = strAt(s, v, 64, TEXT)) === undefined) return undefined
      bit = 2
    } else if (keyLength === 6 && is(s, k, 'ipHash')) {
      if ((ipHash = strAt(s, v, 64, TEXT)) === undefined) return undefined
      bit = 4
    } else if (keyLength === 6 && is(s, k, 'uaHash')) {
      if ((uaHash = strAt(s, v, 64, TEXT)) === undefined) return undefined
      bit = 8
    } else return undefined
    if (seen & bit) return undefined
    seen |= bit
  }
  const out: Rec = {}
  if (seen & 1) out.ua = ua
  if (seen & 2) out.ipPrefix = ipPrefix
  if (seen & 4) out.ipHash = ipHash
  if (seen & 8) out.uaHash = uaHash
  return out
}

const E_EVENT_ID = 1
const E_TS = 2
const E_AD = 4
const E_CAMPAIGN = 8
const E_PUBLISHER = 16
const E_REQUEST = 32
const E_IMPRESSION = 64
const E_USER_KEY = 128
const E_CHANNEL = 256
const E_DEVICE = 512
const E_GEO = 1024
const E_PLACEMENT = 2048
const E_CONSENT = 4096
const E_VIEWABLE = 8192
const E_VIEW_METHOD = 16384
const E_CLICK_ID = 32768
const E_REQUIRED = E_EVENT_ID | E_TS | E_AD | E_CAMPAIGN | E_PUBLISHER | E_REQUEST | E_IMPRESSION

/** The event as read (scanEvent), until the envelope's type, which may follow it, says which keys it may have. */
let evSeen = 0
let eventId = ''
let ts = 0
let adId = ''
let campaignId = ''
let publisherId = ''
let requestId = ''
let impressionId = ''
let userKey: string | undefined
let channel: string | undefined
let device: string | undefined
let geo: string | undefined
let placement: string | undefined
let consent: boolean | undefined
let viewable: boolean | undefined
let viewMethod: string | undefined
let clickId: string | undefined

/** An event id (a ULID, or a UUIDv7) at `i`, ending at `at`. */
function eventIdAt(s: string, i: number): string | undefined {
  if (s.charCodeAt(i) !== QUOTE) return undefined
  if (end(s, i + 1, ULID) === i + 27) {
    at = i + 28
    return s.slice(i + 1, i + 27)
  }
  const x = strAt(s, i, 36, TEXT)
  return x !== undefined && UUIDV7_PATTERN.test(x) ? x : undefined
}

/** Reads the event at `i` into the fields above, ending at `at`; false when it is not of the plain form. */
function scanEvent(s: string, i: number): boolean {
  if (s.charCodeAt(i) !== OPEN) return false
  let seen = 0
  for (let k = nextKey(s, i + 1, true); k !== -1; k = nextKey(s, at, false)) {
    if (k < 0) return false
    const v = at
    let bit: number
    let x: string | undefined
    switch (keyLength) {
      case 2:
        if (!is(s, k, 'ts') || (ts = intAt(s, v)) < 0 || ts > MAX_TS) return false
        bit = E_TS
        break
      case 3: {
        if (!is(s, k, 'geo') || s.charCodeAt(v) !== QUOTE || s.charCodeAt(v + 3) !== QUOTE) return false
        const a = s.charCodeAt(v + 1)
        const b = s.charCodeAt(v + 2)
        if (a < 0x41 || a > 0x5a || b < 0x41 || b > 0x5a) return false
        geo = s.slice(v + 1, v + 3)
        at = v + 4
        bit = E_GEO
        break
      }
      case 4:
        if (!is(s, k, 'adId') || (x = strAt(s, v, 128, ID)) === undefined) return false
        adId = x
        bit = E_AD
        break
      case 6:
        if (!is(s, k, 'device') || (device = oneOf(s, v, DEVICES)) === undefined) return false
        bit = E_DEVICE
        break
      case 7:
        if (is(s, k, 'eventId')) {
          if ((x = eventIdAt(s, v)) === undefined) return false
          eventId = x
          bit = E_EVENT_ID
        } else if (is(s, k, 'userKey')) {
          if ((userKey = strAt(s, v, 128, TEXT)) === undefined) return false
          bit = E_USER_KEY
        } else if (is(s, k, 'channel')) {
          if ((channel = oneOf(s, v, CHANNELS)) === undefined) return false
          bit = E_CHANNEL
        } else if (is(s, k, 'consent')) {
          if ((consent = boolAt(s, v)) === undefined) return false
          bit = E_CONSENT
        } else if (is(s, k, 'clickId')) {
          if ((clickId = strAt(s, v, 128, ID)) === undefined) return false
          bit = E_CLICK_ID
        } else return false
        break
      case 8:
        if (!is(s, k, 'viewable') || (viewable = boolAt(s, v)) === undefined) return false
        bit = E_VIEWABLE
        break
      case 9:
        if (is(s, k, 'requestId')) {
          if ((x = strAt(s, v, 128, ID)) === undefined) return false
          requestId = x
          bit = E_REQUEST
        } else if (is(s, k, 'placement')) {
          if ((placement = strAt(s, v, 128, TEXT)) === undefined) return false
          bit = E_PLACEMENT
        } else return false
        break
      case 10:
        if (is(s, k, 'campaignId')) {
          if ((x = strAt(s, v, 128, ID)) === undefined) return false
          campaignId = x
          bit = E_CAMPAIGN
        } else if (is(s, k, 'viewMethod')) {
          if ((viewMethod = oneOf(s, v, VIEW_METHODS)) === undefined) return false
          bit = E_VIEW_METHOD
        } else return false
        break
      case 11:
        if (!is(s, k, 'publisherId') || (x = strAt(s, v, 128, ID)) === undefined) return false
        publisherId = x
        bit = E_PUBLISHER
        break
      case 12:
        if (!is(s, k, 'impressionId') || (x = strAt(s, v, 128, ID)) === undefined) return false
        impressionId = x
        bit = E_IMPRESSION
        break
      default:
        return false
    }
    if (seen & bit) return false
    seen |= bit
  }
  evSeen = seen
  return (seen & E_REQUIRED) === E_REQUIRED
}

/** The event read last, as the schema of its type gives it (its key order); undefined when the type refuses a key it has. */
function finishEvent(type: string): Rec | undefined {
  const seen = evSeen
  const impression = type === 'impression'
  if (impression ? seen & E_CLICK_ID : seen & (E_VIEWABLE | E_VIEW_METHOD) || !(seen & E_CLICK_ID)) return undefined
  const out: Rec = { eventId, ts, adId, campaignId, publisherId, requestId, impressionId }
  if (seen & E_USER_KEY) out.userKey = userKey
  if (seen & E_CHANNEL) out.channel = channel
  if (seen & E_DEVICE) out.device = device
  if (seen & E_GEO) out.geo = geo
  if (seen & E_PLACEMENT) out.placement = placement
  if (seen & E_CONSENT) out.consent = consent
  if (impression) {
    if (seen & E_VIEWABLE) out.viewable = viewable
    if (seen & E_VIEW_METHOD) out.viewMethod = viewMethod
  } else out.clickId = clickId
  return out
}
