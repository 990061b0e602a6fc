import { isbot, isbotMatches } from 'isbot'
import { detachedText, type Envelope, type ReasonCode } from '@adc/schemas'
import { datacenterProvider } from './datacenter-ranges.js'

/** Bump when a rule or threshold changes: every decision records the version that made it. */
export const IVT_MODEL_VERSION = 'ivt-2026.11.1'

/** Above this score an event is quarantined: kept, not billed. */
export const QUARANTINE_ABOVE = 0.8

/**
 * Whether `score` quarantines an event: above `above`, both as a Float32, because a score is stored
 * as one (events_raw `ivt_score`, ivt_decisions `score`) and the billing job's final join reads the
 * stored score (`ivt_score > toFloat32(…)`, billing/final-join.ts). Compared as float64 here and as
 * Float32 there, a score in (0.79999998, 0.8] would bill in the stream and be quarantined in the
 * T+1 bill (Float32 0.8 is 0.800000011920929).
 */
export function quarantines(score: number, above: number = QUARANTINE_ABOVE): boolean {
  return Math.fround(score) > Math.fround(above)
}

export const RULE_SCORES = {
  givt_known_bot: 1,
  givt_non_browser: 0.95,
  givt_missing_ua: 0.9,
  givt_datacenter_ip: 0.9,
  givt_prefetch: 1,
  prefetch_click: 1,
  sivt_fast_click: 0.85,
  sivt_burst: 0.85,
} as const satisfies Partial<Record<ReasonCode, number>>

export type IvtReason = keyof typeof RULE_SCORES

/**
 * HTTP libraries and tools that identify themselves (isbot covers most; this catches the rest). On the
 * web channel any agent that does not claim to be a browser (`Mozilla/…`, `Opera/…`) is non-browser;
 * apps and servers legitimately send SDK agents (`Dalvik/…`, `MyApp/1.0 CFNetwork/…`), so there only
 * this list applies.
 */
const HTTP_LIBRARY = /^(curl|wget|python|go-http-client|java\/|okhttp|axios|node-fetch|node|undici|got|libwww|lwp|httpclient|apache-httpclient|postmanruntime|insomnia|php|ruby|aiohttp|httpx|scrapy|powershell|winhttp|dart|rest-client|faraday|guzzle|http_request|reqwest|hackney|httpie)\b/i
const BROWSER_PREFIX = /^(mozilla|opera)\//i

/**
 * The HTTP stacks of mobile and TV apps: Android (OkHttp, Dalvik's HttpURLConnection, Ktor), iOS
 * (CFNetwork/Darwin, Alamofire) and Flutter (`Dart/3.3 (dart:io)`). isbot and the list above call most
 * of them tools (`okhttp/4.12.0` alone matches both), which quarantined every event of an ordinary
 * Android or Flutter app. Outside the web channel these tokens (with the comment that follows one, e.g.
 * `Dalvik/2.1.0 (Linux; U; Android 14; …)`) are cut out of the agent and what is left is judged,
 * so `okhttp/4.12.0 curl/8.5.0` or `Dart/3.3 Googlebot/2.1` stay invalid. README: "Invalid user
 * agents per channel".
 */
const APP_SDK_TOKEN = /\b(?:okhttp\/[\w.-]+|dart\/[\d.]+|cfnetwork\/[\d.]+|darwin\/[\d.]+|dalvik\/[\d.]+|ktor[- ]client(?:\/[\w.-]+)?|alamofire\/[\d.]+)(?:\s*\([^()]*\))?/gi

/** The rules outside the web channel: known bots and the tool list, on what is left after SDK tokens. */
function appAgentReasons(ua: string): IvtReason[] {
  const rest = ua.replace(APP_SDK_TOKEN, ' ').replace(/\s+/g, ' ').trim()
  if (rest === ua.trim()) {
    if (isbot(ua)) return ['givt_known_bot']
    return HTTP_LIBRARY.test(ua) ? ['givt_non_browser'] : []
  }
  if (rest === '') return []
  // The app's own product token (`MyApp/2.1.0` before `CFNetwork/…`) is what isbot calls a bare
  // `name/version` agent; with an SDK token beside it, it is the app naming itself, not a tool.
  if (isbotMatches(rest).some((m) => m !== rest)) return ['givt_known_bot']
  return HTTP_LIBRARY.test(rest) ? ['givt_non_browser'] : []
}

/**
 * Verdicts per (channel, agent): real traffic repeats a few thousand agents, and isbot's pattern is
 * the costliest rule. Bounded; cleared when full.
 */
const uaCache = new Map<string, IvtReason[]>()
const UA_CACHE_MAX = 20_000

/** Per-event GIVT rules on the user agent (also used by the precision/recall test on public lists). */
export function userAgentReasons(ua: string | undefined, channel: string): IvtReason[] {
  if (ua === undefined || ua.trim() === '') return channel === 'web' ? ['givt_missing_ua'] : []
  const key = channel === 'web' ? ua : `\u0000${ua}`
  const hit = uaCache.get(key)
  if (hit) return hit
  let out: IvtReason[] = []
  if (channel !== 'web') out = appAgentReasons(ua)
  else if (isbot(ua)) out = ['givt_known_bot']
  else if (HTTP_LIBRARY.test(ua) || !BROWSER_PREFIX.test(ua)) out = ['givt_non_browser']
  if (uaCache.size >= UA_CACHE_MAX) uaCache.clear()
  uaCache.set(detachedText(key), out) // kept past its event: not a cut holding its record's text
  return out
}

export interface ActivityFacts {
  /** Event time of the impression a click joined. */
  impressionTs?: number
  /** Events from the same IP prefix / user key in the same minute of this partition, this one included. */
  ipPrefixPerMinute?: number
  userKeyPerMinute?: number
}

export interface BurstLimits {
  /** @default 600 */
  ipPrefixPerMinute: number
  /** @default 120 */
  userKeyPerMinute: number
  /** A click sooner than this after its impression is not a person. @default 1000 */
  fastClickMs: number
}

export const DEFAULT_LIMITS: BurstLimits = { ipPrefixPerMinute: 600, userKeyPerMinute: 120, fastClickMs: 1000 }

/** All rules for one event: reasons sorted by score, the score is the strongest rule's. */
export function scoreEnvelope(env: Envelope, facts: ActivityFacts, limits: BurstLimits = DEFAULT_LIMITS): { score: number; reasons: IvtReason[] } {
  const channel = env.event.channel ?? 'web'
  const withheld = env.event.consent === false && env.client.ua === undefined && env.client.ipPrefix === undefined
  // A sender-side `uaHash` says an agent was there; it is opaque, so no agent rule can judge it.
  const hashedOnly = env.client.ua === undefined && env.client.uaHash !== undefined
  const reasons: IvtReason[] = withheld || hashedOnly ? [] : [...userAgentReasons(env.client.ua, channel)]
  if (datacenterProvider(env.client.ipPrefix)) reasons.push('givt_datacenter_ip')
  if (env.edge.prefetch) reasons.push(env.type === 'click' ? 'prefetch_click' : 'givt_prefetch')
  if (env.type === 'click' && facts.impressionTs !== undefined && env.event.ts - facts.impressionTs < limits.fastClickMs) reasons.push('sivt_fast_click')
  if ((facts.ipPrefixPerMinute ?? 0) > limits.ipPrefixPerMinute || (facts.userKeyPerMinute ?? 0) > limits.userKeyPerMinute) reasons.push('sivt_burst')
  reasons.sort((a, b) => RULE_SCORES[b] - RULE_SCORES[a])
  return { score: reasons.length ? RULE_SCORES[reasons[0]!] : 0, reasons }
}
