/**
 * What may leave the edge about the end user: consent, IP truncation and hashing, the user agent.
 */
import type { z } from 'zod'
import { cleanText, truncateText, type clientFactsSchema } from '@adc/schemas'
import { hmacSha256, toHex } from '../crypto.js'

export type ClientFacts = z.infer<typeof clientFactsSchema>

function parseV4(ip: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip)
  if (!m) return null
  const parts = m.slice(1).map(Number)
  return parts.every((n) => n <= 255) ? parts : null
}

/** Expands an IPv6 address to 8 numeric groups (handles `::` and an embedded IPv4 tail). */
function parseV6(ip: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(ip) || ip.length > 45) return null
  let text = ip
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':')
    const v4 = parseV4(text.slice(lastColon + 1))
    if (!v4) return null
    text = `${text.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return null
  const toGroups = (s: string): number[] | null => {
    if (s === '') return []
    const gs = s.split(':')
    if (gs.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null
    return gs.map((g) => parseInt(g, 16))
  }
  const head = toGroups(halves[0]!)
  const rest = halves.length === 2 ? toGroups(halves[1]!) : []
  if (!head || !rest) return null
  const want = 8
  if (halves.length === 2) {
    if (head.length + rest.length > want - 1) return null
    return [...head, ...new Array<number>(want - head.length - rest.length).fill(0), ...rest]
  }
  if (head.length !== want) return null
  return head
}

export type ParsedIp = { family: 4; parts: number[] } | { family: 6; groups: number[] }

export function parseIp(ip: string): ParsedIp | null {
  const v4 = parseV4(ip)
  if (v4) return { family: 4, parts: v4 }
  const v6 = parseV6(ip)
  if (!v6) return null
  // IPv4-mapped (::ffff:a.b.c.d) is an IPv4 client.
  if (v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff) {
    return { family: 4, parts: [v6[6]! >> 8, v6[6]! & 0xff, v6[7]! >> 8, v6[7]! & 0xff] }
  }
  return { family: 6, groups: v6 }
}

/** The network prefix kept instead of an IP: /24 for IPv4, /48 for IPv6. */
export function truncateIp(ip: string): string | undefined {
  const p = parseIp(ip)
  if (!p) return undefined
  if (p.family === 4) return `${p.parts[0]}.${p.parts[1]}.${p.parts[2]}.0/24`
  return `${p.groups.slice(0, 3).map((g) => g.toString(16)).join(':')}::/48`
}

function canonical(p: ParsedIp): string {
  return p.family === 4 ? p.parts.join('.') : p.groups.map((g) => g.toString(16)).join(':')
}

/** UTC day, the salt's rotation period. */
export function saltDay(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 10)
}

const saltCache = new Map<string, string>()

/** The daily salt: HMAC-SHA256(secret, "ip-salt:" + UTC day). It never leaves the edge. */
export async function dailySalt(secret: string, nowMs: number): Promise<string> {
  const id = `${secret}\u001f${saltDay(nowMs)}`
  let salt = saltCache.get(id)
  if (!salt) {
    salt = toHex(await hmacSha256(secret, `ip-salt:${saltDay(nowMs)}`))
    if (saltCache.size > 8) saltCache.clear()
    saltCache.set(id, salt)
  }
  return salt
}

/** A salted hash of the full IP (first 16 bytes of HMAC-SHA256(daily salt, canonical IP), hex). */
export async function ipHash(ip: string, secret: string, nowMs: number): Promise<string | undefined> {
  const p = parseIp(ip)
  if (!p) return undefined
  return toHex((await hmacSha256(await dailySalt(secret, nowMs), canonical(p))).subarray(0, 16))
}

export interface ObservedClient {
  ua?: string | undefined
  ip?: string | undefined
}

/**
 * What may leave the edge about the end user. A raw IP is never returned: only its prefix and
 * salted hash.
 *
 * `consent === false` keeps only what detecting invalid traffic needs: the user agent (known bots)
 * and the network prefix (/24 or /48: datacenters, bursts from one network), never the salted hash
 * that tells one user from another. Fraud detection is a purpose consent does not switch off (IAB
 * TCF's special purpose 1); had it kept nothing, anyone could send `consent: false` (or a pixel's
 * `consent=0`) and have a bot or a datacenter's traffic billed unchecked.
 */
export async function clientFacts(observed: ObservedClient, consent: boolean | undefined, secret: string, nowMs: number): Promise<ClientFacts> {
  const facts: ClientFacts = {}
  // A header may carry controls (obs-text read as Latin-1 gives C1); cut without splitting a pair.
  if (observed.ua) facts.ua = cleanText(truncateText(observed.ua, 1024))
  if (observed.ip) {
    const prefix = truncateIp(observed.ip)
    if (prefix) facts.ipPrefix = prefix
    if (consent === false) return facts
    const hash = await ipHash(observed.ip, secret, nowMs)
    if (hash) facts.ipHash = hash
  }
  return facts
}
