/**
 * Requests on the click redirect and the pixel that are not a person (HEAD, prefetch, link scanners).
 */
import { isbot } from 'isbot'

export type PrefetchKind = 'head' | 'prefetch' | 'link_scanner'

/**
 * Requests on the click redirect that are not a person clicking: HEAD (link checkers), speculative
 * loads (`Sec-Purpose: prefetch` / `prefetch;prerender` per the Fetch spec's speculation headers,
 * and the older `Purpose`/`X-Purpose`/`X-Moz` spellings), and known bots and link scanners by
 * user agent (isbot's list covers mail and chat link expanders). They still get the redirect.
 */
export function prefetchKind(req: Request): PrefetchKind | undefined {
  if (req.method === 'HEAD') return 'head'
  const purpose = ['sec-purpose', 'purpose', 'x-purpose', 'x-moz'].map((h) => req.headers.get(h) ?? '').join(' ').toLowerCase()
  if (/prefetch|prerender|preview/.test(purpose)) return 'prefetch'
  const ua = req.headers.get('user-agent')
  if (ua && isbot(ua)) return 'link_scanner'
  return undefined
}
