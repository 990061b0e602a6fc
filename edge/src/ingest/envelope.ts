/**
 * Builds the v1 log envelope (schemas/src/envelope.ts) for an accepted event: the event, its
 * idempotency key, the edge's facts and the privacy-filtered client facts.
 */
import { ENVELOPE_VERSION, isCleanText, type ClickEvent, type EnvelopeInput, type EventType, type ImpressionEvent } from '@adc/schemas'
import { countryOf, deviceClassOf } from './device.js'
import { clientFacts, type ClientFacts, type ObservedClient } from '../privacy/privacy.js'
import { SHARED_CREDENTIALS, type Credential } from '../context.js'

export type EnvelopeSource = 'batch' | 'beacon' | 'pixel' | 'redirect' | 's2s'

export interface EdgeFacts {
  colo?: string
  country?: string
  asn?: number
}

/** Reads the request's `cf` facts, keeping only well-formed values (they are optional on the wire). */
export function edgeFactsFrom(cf: unknown): EdgeFacts {
  const facts: EdgeFacts = {}
  if (!cf || typeof cf !== 'object') return facts
  const { colo, country, asn } = cf as { colo?: unknown; country?: unknown; asn?: unknown }
  if (typeof colo === 'string' && colo.length > 0 && colo.length <= 16 && isCleanText(colo)) facts.colo = colo
  if (typeof country === 'string' && /^[A-Z0-9]{2}$/.test(country)) facts.country = country
  if (typeof asn === 'number' && Number.isInteger(asn) && asn >= 0) facts.asn = asn
  return facts
}

export interface EnvelopeContext {
  source: EnvelopeSource
  observed: ObservedClient
  edge: EdgeFacts
  prefetch?: boolean
  receivedAt: number
  /**
   * What the request's credential may send (`Credential`). A `public_key` or an `app_signature`
   * (anyone who read the page or unpacked the app may send with it) or a `token` (a pixel or
   * redirect the end user's browser loads) makes the request the end user's own: its observed IP is
   * kept, never one the event claims.
   * @default trusted to name the end user (server key, server-scope request signature)
   */
  credential?: Credential
  /**
   * The version of the tenant config the event was checked against (its campaign booked there),
   * stamped as `edge.configVersion`: core's processor catches its tenant view up to it before it
   * calls the campaign unbooked. Only a non-negative safe integer is stamped (`stampableVersion`):
   * a static EDGE_CONFIG_JSON may carry any integer, and core refuses an envelope with any other
   * value as a bad row. @default not stamped
   */
  configVersion?: number
}

/**
 * Whether a config version may be stamped as `edge.configVersion`: the envelope contract takes a
 * non-negative safe integer only. Core's configs always are; a static config's version need not
 * be, and an event checked against it goes unstamped (core then catches its view up before any
 * `unknown_campaign`, as for an edge from before stamps) rather than failing core's decode.
 */
export const stampableVersion = (v: number | undefined): v is number => v !== undefined && Number.isSafeInteger(v) && v >= 0

/** Whether the request is the end user's own, so only what the edge observes of it may describe the client. */
function isEndUserRequest(credential: Credential | undefined): boolean {
  return credential !== undefined && SHARED_CREDENTIALS.has(credential)
}

/**
 * The v1 log envelope (schemas/src/envelope.ts). The event's own `ua`/`ip` (server-to-server
 * callers) take the place of the observed request values and are treated exactly alike: the raw
 * IP is reduced to prefix + salted hash and never forwarded. A server-to-server event without
 * them gets no client facts, because the observed request is the ad server's, not the user's.
 * A sender that hashed on its side sends `ipHash`/`uaHash` instead: they are kept as given
 * (lower-cased) in place of the request's values; a raw `ip`/`ua` in the same event wins.
 * `consent: false` keeps no user key and no hash that tells users apart: only the agent and the
 * network prefix, what invalid-traffic detection needs (privacy.ts `clientFacts`). Only a server key or a server-scope request
 * signature speaks for an end user this way: a public key's or an app-scope signature's request
 * (anyone may send with it) or a token's (the browser's own) keeps the IP the edge observed,
 * whatever `ip`, `ipHash` or channel it claims.
 *
 * Geo and device the client did not send come from the edge: the country of `request.cf` and the
 * device class of the user's agent; the client's own (schema-valid) values always win. A
 * server-to-server request's country is the ad server's, so there only a forwarded agent counts.
 */
export async function buildEnvelope(
  item: { type: EventType; event: ImpressionEvent | ClickEvent; key: string; dedupe: 'new' | 'skipped' },
  ctx: EnvelopeContext,
  ipHashSecret: string,
  /** Per-request memo: events of one batch usually share one client, hashed once. */
  factsMemo: Map<string, Promise<ClientFacts>> = new Map(),
): Promise<EnvelopeInput> {
  const { ua, ip: claimedIp, ipHash, uaHash, ...rest } = item.event
  const event: typeof rest = { ...rest }
  if (event.consent === false) delete event.userKey
  // A request anyone may send (public key, app signature) or the browser's own (token) is never server-to-server,
  // whatever channel it names, and the IP it came from is the only one it can prove: a claimed ip or
  // ipHash would let a datacenter bot be judged on an address of its choosing. (Its agent header
  // is the sender's to set either way, so a claimed ua or uaHash is taken as the header would be.)
  const endUser = isEndUserRequest(ctx.credential)
  const ip = endUser ? undefined : claimedIp
  const claimedIpHash = endUser ? undefined : ipHash
  const serverToServer = !endUser && (event.channel === 's2s' || ctx.source === 's2s')
  const observed: ObservedClient = {
    ua: ua ?? (serverToServer || uaHash !== undefined ? undefined : ctx.observed.ua),
    ip: ip ?? (serverToServer || claimedIpHash !== undefined ? undefined : ctx.observed.ip),
  }
  if (event.geo === undefined && !serverToServer) {
    const geo = countryOf(ctx.edge.country)
    if (geo) event.geo = geo
  }
  if (event.device === undefined) {
    const device = deviceClassOf(observed.ua)
    if (device) event.device = device
  }
  const client = await memoFacts(factsMemo, observed, event.consent, ipHashSecret, ctx.receivedAt)
  if (event.consent !== false) {
    if (ip === undefined && claimedIpHash !== undefined) client.ipHash = claimedIpHash.toLowerCase()
    if (ua === undefined && uaHash !== undefined) client.uaHash = uaHash.toLowerCase()
  }
  const edge = { ...ctx.edge, dedupe: item.dedupe, source: event.channel === 's2s' && !endUser ? 's2s' as const : ctx.source, ...(ctx.prefetch ? { prefetch: true } : {}), ...(stampableVersion(ctx.configVersion) ? { configVersion: ctx.configVersion } : {}) }
  return {
    v: ENVELOPE_VERSION as 1,
    type: item.type,
    key: item.key,
    receivedAt: ctx.receivedAt,
    edge,
    client,
    event,
  } as EnvelopeInput
}

function memoFacts(memo: Map<string, Promise<ClientFacts>>, observed: ObservedClient, consent: boolean | undefined, secret: string, nowMs: number): Promise<ClientFacts> {
  const id = `${consent === false ? 0 : 1}\u001f${observed.ua ?? ''}\u001f${observed.ip ?? ''}`
  let facts = memo.get(id)
  if (!facts) {
    facts = clientFacts(observed, consent, secret, nowMs)
    memo.set(id, facts)
  }
  // A copy per envelope: the records are serialised separately and must not share objects.
  return facts.then((f) => ({ ...f }))
}
