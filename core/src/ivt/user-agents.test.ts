import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { userAgentReasons } from './rules.js'

const require = createRequire(import.meta.url)

/**
 * Precision and recall of the user-agent GIVT rules on agent lists nobody here wrote:
 * positives are every example in `crawler-user-agents` (bots, crawlers, HTTP tools), negatives the
 * real-browser agents of `top-user-agents` (the 100 most common) and `user-agents` (10,000 samples,
 * about 900 distinct agents, from real traffic). Note: isbot draws part of its pattern list from crawler-user-agents, so
 * recall on that list is partly by construction; precision on real browsers is the figure that protects
 * revenue.
 */
function evaluate(): { tp: number; fn: number; fp: number; tn: number; misses: string[]; falseAlarms: string[] } {
  const crawlers = require('crawler-user-agents') as Array<{ instances?: string[] }>
  const positives = [...new Set(crawlers.flatMap((c) => c.instances ?? []))]
  const top = require('top-user-agents') as string[]
  const sampled = (JSON.parse(readFileSync(join(dirname(require.resolve('user-agents')), 'user-agents.json'), 'utf8')) as Array<{ userAgent: string }>).map((u) => u.userAgent)
  const negatives = [...new Set([...top, ...sampled])].filter((ua) => !positives.includes(ua))
  let tp = 0, fn = 0, fp = 0, tn = 0
  const misses: string[] = []
  const falseAlarms: string[] = []
  for (const ua of positives) {
    if (userAgentReasons(ua, 'web').length > 0) tp++
    else { fn++; misses.push(ua) }
  }
  for (const ua of negatives) {
    if (userAgentReasons(ua, 'web').length > 0) { fp++; falseAlarms.push(ua) }
    else tn++
  }
  return { tp, fn, fp, tn, misses, falseAlarms }
}

describe('IVT user-agent rules on public agent lists', () => {
  it('flag nearly every listed crawler and almost no real browser', () => {
    const { tp, fn, fp, tn, misses, falseAlarms } = evaluate()
    const precision = tp / (tp + fp)
    const recall = tp / (tp + fn)
    const falsePositiveRate = fp / (fp + tn)
    console.log(JSON.stringify({ positives: tp + fn, negatives: fp + tn, tp, fn, fp, tn, precision: +precision.toFixed(4), recall: +recall.toFixed(4), falsePositiveRate: +falsePositiveRate.toFixed(5), sampleMisses: misses.slice(0, 5), sampleFalseAlarms: falseAlarms.slice(0, 5) }))
    expect(tp + fn).toBeGreaterThan(1000)
    expect(fp + tn).toBeGreaterThan(900)
    expect(recall).toBeGreaterThan(0.95)
    expect(precision).toBeGreaterThan(0.99)
    expect(falsePositiveRate).toBeLessThan(0.005)
  })

  it('does not call an app SDK agent non-browser outside the web channel, but does on the web', () => {
    const sdk = 'Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240205.004)'
    expect(userAgentReasons(sdk, 'app')).toEqual([])
    expect(userAgentReasons(sdk, 'web')).toEqual(['givt_non_browser'])
    expect(userAgentReasons('python-requests/2.31.0', 'app').length).toBe(1)
    expect(userAgentReasons(undefined, 'web')).toEqual(['givt_missing_ua'])
    expect(userAgentReasons(undefined, 's2s')).toEqual([])
  })
})

/**
 * Real agent strings per channel, as the README's "Invalid user agents per channel" table states
 * them: `[]` means valid traffic, otherwise the reasons the rules must give.
 */
const APP_SDK_AGENTS = [
  'okhttp/4.12.0',
  'okhttp/3.14.9',
  'Dart/3.3 (dart:io)',
  'Dart/2.19 (dart:io)',
  'CFNetwork/1494 Darwin/23.4.0',
  'MyApp/2.1.0 CFNetwork/1494.0.7 Darwin/23.4.0',
  'Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240205.004)',
  'ktor-client',
  'Ktor client',
  'Alamofire/5.9',
  'MyApp/1.0 (com.example.app; build:42; iOS 17.4.1) Alamofire/5.9.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36',
]
const TOOLS = [
  'curl/8.5.0',
  'python-requests/2.31.0',
  'Python-urllib/3.12',
  'Go-http-client/2.0',
  'Go-http-client/1.1',
  'Wget/1.21.4',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36',
]
const BOTS = [
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
  'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
]

describe('IVT user-agent rules per channel (the README table)', () => {
  it.each(['app', 's2s', 'ctv'])('accepts mobile SDK agents on the %s channel', (channel) => {
    for (const ua of APP_SDK_AGENTS) expect({ ua, reasons: userAgentReasons(ua, channel) }).toEqual({ ua, reasons: [] })
  })

  it('calls the SDK agents that do not claim a browser non-browser on the web channel', () => {
    for (const ua of APP_SDK_AGENTS.filter((a) => !a.startsWith('Mozilla/'))) {
      expect({ ua, reasons: userAgentReasons(ua, 'web') }).toEqual({ ua, reasons: [expect.stringMatching(/^givt_(non_browser|known_bot)$/)] })
    }
  })

  it.each(['web', 'app', 'ctv', 's2s'])('keeps HTTP tools, headless browsers and known bots invalid on the %s channel', (channel) => {
    for (const ua of [...TOOLS, ...BOTS]) expect({ ua, invalid: userAgentReasons(ua, channel).length > 0 }).toEqual({ ua, invalid: true })
  })

  it('does not let an SDK token launder a tool or a bot that names it too', () => {
    for (const ua of ['okhttp/4.12.0 curl/8.5.0', 'Dart/3.3 (dart:io) Googlebot/2.1', 'python-requests/2.31.0 Alamofire/5.9', 'ktor-client HeadlessChrome/124.0']) {
      expect({ ua, invalid: userAgentReasons(ua, 'app').length > 0 }).toEqual({ ua, invalid: true })
    }
  })
})
