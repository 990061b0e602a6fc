import { fileURLToPath } from 'node:url'
import { unstable_readConfig } from 'wrangler'
import { describe, expect, it } from 'vitest'
import { CLIENT_RETRY_AFTER_SECONDS } from './rate-limit/client-limit.js'

/** What these tests read of wrangler's resolved config. */
interface Bindings {
  durable_objects: { bindings: Array<{ name: string; class_name: string }> }
  ratelimits: Array<{ name: string; simple: { limit: number; period: number } }>
}

const config = fileURLToPath(new URL('../../wrangler.toml', import.meta.url))
const read = (env?: string): Bindings => unstable_readConfig({ config, ...(env ? { env } : {}) }) as unknown as Bindings

describe('wrangler.toml', () => {
  // Wrangler does not inherit bindings into an environment: one left out of [env.production]
  // would be missing from the deployed Worker, and its guard silently off.
  it('repeats every binding of the development config in [env.production]', () => {
    const dev = read()
    const prod = read('production')
    const names = (c: Bindings) => ({
      durableObjects: c.durable_objects.bindings.map((b) => `${b.name}:${b.class_name}`).sort(),
      rateLimits: c.ratelimits.map((r) => r.name).sort(),
    })
    expect(names(prod)).toEqual(names(dev))
    expect(names(prod).rateLimits).toContain('CLIENT_LIMIT')
  })

  it("gives production a real client share, whose window is the Retry-After a refused client is told", () => {
    const share = read('production').ratelimits.find((r) => r.name === 'CLIENT_LIMIT')!
    expect(share.simple.period).toBe(CLIENT_RETRY_AFTER_SECONDS)
    expect(share.simple.limit).toBeGreaterThan(0)
    expect(share.simple.limit).toBeLessThanOrEqual(1000)
  })
})
