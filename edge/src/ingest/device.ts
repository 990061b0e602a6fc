/**
 * The device class and country an envelope records, from the user agent and the edge's request facts.
 */
import Bowser from 'bowser'

export type DeviceClass = 'desktop' | 'mobile' | 'tablet' | 'ctv'

const BY_PLATFORM: Record<string, DeviceClass> = { desktop: 'desktop', mobile: 'mobile', tablet: 'tablet', tv: 'ctv' }

/**
 * Parses are cached per agent: real traffic repeats a few thousand agents, and a parse runs dozens
 * of patterns. Bounded per isolate in agents and in their characters, cleared when either is full:
 * the agent is the client's header, up to the request's 128 KB of headers, so a count alone let
 * 5,000 long agents hold more than the isolate's 128 MB (and an isolate over it is ended with the
 * deliveries it still had in `waitUntil`). A real agent is a few hundred characters.
 */
const cache = new Map<string, DeviceClass | undefined>()
const CACHE_MAX = 5_000
const CACHE_MAX_CHARS = 2 * 1024 * 1024
let cachedChars = 0

/**
 * The device class of a user agent (bowser's platform type; `tv` is `ctv`), or undefined when the
 * agent does not tell (SDK agents such as `okhttp/4.12.0`, tools, an empty agent): unknown is left
 * unknown rather than called `other`.
 */
export function deviceClassOf(ua: string | undefined): DeviceClass | undefined {
  if (!ua) return undefined
  if (cache.has(ua)) return cache.get(ua)
  let device: DeviceClass | undefined
  try {
    const type = Bowser.parse(ua.slice(0, 1024)).platform.type
    device = type ? BY_PLATFORM[type] : undefined
  } catch {
    device = undefined
  }
  if (cache.size >= CACHE_MAX || cachedChars + ua.length > CACHE_MAX_CHARS) {
    cache.clear()
    cachedChars = 0
  }
  cache.set(ua, device)
  cachedChars += ua.length
  return device
}

/**
 * The visitor's country from `request.cf.country` as an event `geo`: ISO 3166-1 alpha-2 only
 * (Cloudflare also answers `XX` for unknown and `T1` for Tor, which are no country).
 */
export function countryOf(cfCountry: string | undefined): string | undefined {
  if (!cfCountry || !/^[A-Z]{2}$/.test(cfCountry) || cfCountry === 'XX') return undefined
  return cfCountry
}
