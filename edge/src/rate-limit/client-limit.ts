/**
 * One client's share of a publisher's public budgets: the beacon's public key and the tokens of the
 * pixel and the click redirect are in every page and every ad's markup, an app-scope request key's
 * secret in every copy of the app, so anyone can spend those
 * budgets (budget.ts). Without a share per client, one address looping on a pixel URL, or sending
 * full beacons, would use up the publisher's whole token or public-key budget, and every real
 * visitor's impressions and clicks after it would be refused.
 *
 * Taken by `enforceRateLimit` (budget.ts) on every route that spends a budget that way, and by the
 * click redirect, which answers a refusal with its redirect. Counted with the Workers Rate Limiting
 * binding (`CLIENT_LIMIT` in wrangler.toml: a fixed window per key, counted in the location that
 * serves the client, which is where one address's requests land), before the publisher's budget, so a client over its share spends none of the publisher's.
 *
 * - The key is the publisher and the client's address (`clientAddress`): an IPv6 client is its /64,
 *   the block one subscriber is given, or each of its 2^64 addresses would have a share of its own.
 * - One unit per started `CLIENT_UNIT_EVENTS` events of a request (a pixel or a click is one unit,
 *   a full beacon ten), so a client cannot send 500-event beacons at the rate of 1-event ones.
 * - Only what anyone can send is counted (`SHARED_CREDENTIALS`: the public key, on the beacon and on
 *   the batch routes alike, app-scope request signatures, whose secret is in every copy of the app,
 *   and tokens): server keys and server-scope request signatures are not, since an ad server or an
 *   app's backend sends from few addresses on purpose, and its budget is its own.
 * - Without the binding, or without the client's address (`CF-Connecting-IP`, always set on
 *   Cloudflare), there is no share to count and the publisher's budget alone applies. A binding that
 *   fails counts nothing (fail-open, logged), as the RateLimiter objects do.
 */
import { SHARED_CREDENTIALS, type Credential } from '../context.js'
import type { Env } from '../env.js'
import { fail } from '../errors.js'
import { parseIp } from '../privacy/privacy.js'

export { SHARED_CREDENTIALS }

/** Events counted as one unit of a client's share. */
export const CLIENT_UNIT_EVENTS = 50

/** The client-address part of a share's key: an IPv4 address, or an IPv6 client's /64; undefined when `ip` is no address. */
export function clientAddress(ip: string | undefined): string | undefined {
  const p = ip === undefined ? null : parseIp(ip.trim())
  if (!p) return undefined
  if (p.family === 4) return p.parts.join('.')
  return `${p.groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`
}

/** Units a request of `events` events takes from its client's share. */
export const clientUnits = (events: number): number => Math.max(1, Math.ceil(events / CLIENT_UNIT_EVENTS))

/** The share's key: the publisher, then the address after a `/` (which no publisher id holds). */
export const clientShareKey = (publisherId: string, address: string): string => `${publisherId}/${address}`

/**
 * Takes a request's units from its client's share of the publisher's public budgets: false when
 * any does not fit (the request is then refused whole, as by the publisher's budget). A request
 * sent with another credential than `SHARED_CREDENTIALS` takes nothing.
 */
export async function takeClientShare(env: Pick<Env, 'CLIENT_LIMIT'>, credential: Credential, publisherId: string, ip: string | undefined, events: number): Promise<boolean> {
  const binding = env.CLIENT_LIMIT
  if (!binding || !SHARED_CREDENTIALS.has(credential)) return true
  const address = clientAddress(ip)
  if (address === undefined) return true
  const key = clientShareKey(publisherId, address)
  try {
    const outcomes = await Promise.all(Array.from({ length: clientUnits(events) }, () => binding.limit({ key })))
    return outcomes.every((o) => o.success)
  } catch (err) {
    console.error('client rate limit unavailable; the publisher budget alone applies', publisherId, err instanceof Error ? err.message : err)
    return true
  }
}

/** Seconds a refused client waits: the binding's window (10 s in wrangler.toml). */
export const CLIENT_RETRY_AFTER_SECONDS = 10

/** Like `takeClientShare`, but throws 429 `client_rate_limited` with Retry-After when the share is spent. */
export async function enforceClientShare(env: Pick<Env, 'CLIENT_LIMIT'>, credential: Credential, publisherId: string, ip: string | undefined, events: number): Promise<void> {
  if (await takeClientShare(env, credential, publisherId, ip, events)) return
  throw fail('client_rate_limited', `this client address sent more than its share of publisher ${publisherId}'s public budget; retry after ${CLIENT_RETRY_AFTER_SECONDS} s`, { 'retry-after': String(CLIENT_RETRY_AFTER_SECONDS) })
}
