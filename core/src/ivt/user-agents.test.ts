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
