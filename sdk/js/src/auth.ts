import { SIGNATURE_HEADERS, sha256Hex, signRequest } from '@adc/schemas/signing'

/**
 * How the client proves who it is. The only module that knows the key kinds:
 * - `publicKey`: a publishable key that ships inside web pages and apps. It goes in the query of the
 *   beacon route (`text/plain`, no CORS preflight), and is meant for impressions and for clicks that
 *   carry a `clickToken` minted by the ad server.
 * - `keyId` + `secret`: HMAC request signing (each request signed anew) with a request key. Inside an
 *   app, an `app`-scope key (the default): trusted as the public key, so clicks must carry the ad
 *   server's `clickToken` and the edge keeps the IP it observes. On a server, a `server`-scope key:
 *   any event, as a server key.
 * - `serverKey`: a secret key for servers, sent as `Authorization: Bearer`.
 */
export type Auth = { publicKey: string } | { keyId: string; secret: string } | { serverKey: string }

/** `beacon`: one mixed body on `/v1/beacon` (64 KiB); `batch`: one body per event type on `/v1/events/<type>s:batch` (1 MiB). */
export type Route = 'beacon' | 'batch'

export function routeFor(auth: Auth): Route {
  return 'publicKey' in auth ? 'beacon' : 'batch'
}

export interface SignedRequest {
  url: string
  headers: Record<string, string>
}

export interface Authorizer {
  route: Route
  /** The URL and headers for one POST of `body` to `url`. */
  authorize(url: string, body: string): Promise<SignedRequest>
  /** The URL for `navigator.sendBeacon`, which cannot carry headers; null when the auth needs headers. */
  beaconUrl(url: string): string | null
}

/**
 * `now` is the edge's clock as best known (the client passes the device clock corrected by the
 * offset learnt from the edge's answers, see clock.ts), so a device clock more than 5 minutes off
 * does not get every request refused as `signature_stale`.
 */
/** How far past the clock a timestamp is moved to differ from the last one of the same body. */
const MAX_FORWARD_SECONDS = 60

export function createAuthorizer(auth: Auth, now: () => number = Date.now): Authorizer {
  if ('publicKey' in auth) {
    const withKey = (url: string) => `${url}${url.includes('?') ? '&' : '?'}k=${encodeURIComponent(auth.publicKey)}`
    return {
      route: 'beacon',
      authorize: async (url) => ({ url: withKey(url), headers: { 'content-type': 'text/plain;charset=UTF-8' } }),
      beaconUrl: withKey,
    }
  }
  if ('serverKey' in auth) {
    return {
      route: 'batch',
      authorize: async (url) => ({ url, headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.serverKey}` } }),
      beaconUrl: () => null,
    }
  }
  // The edge refuses a signature it has seen (signature_replayed). A retry of the same body within
  // the same second would sign to the same bytes, so the timestamp only moves forward per body, by up
  // to a minute: a body last signed further ahead was signed on a clock since corrected (a device
  // clock ahead, refused as signature_stale), and signing after that stale timestamp would be refused
  // the same way on every retry. Its own second is used then (a replay there is signed anew).
  const lastSecond = new Map<string, number>()
  return {
    route: 'batch',
    async authorize(url, body) {
      const path = new URL(url).pathname
      let ts = Math.floor(now() / 1000)
      const bodyHash = await sha256Hex(body)
      const previous = lastSecond.get(bodyHash)
      if (previous !== undefined && ts <= previous && previous - ts < MAX_FORWARD_SECONDS) ts = previous + 1
      if (lastSecond.size > 256) lastSecond.clear()
      lastSecond.set(bodyHash, ts)
      const signature = await signRequest(auth.secret, ts, 'POST', path, body)
      return {
        url,
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADERS.keyId]: auth.keyId,
          [SIGNATURE_HEADERS.timestamp]: String(ts),
          [SIGNATURE_HEADERS.signature]: signature,
        },
      }
    },
    beaconUrl: () => null,
  }
}
