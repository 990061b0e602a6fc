import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { deviceClassOf } from './device.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

describe('deviceClassOf', () => {
  it('reads the class from the agent, and leaves an agent that does not tell unknown', () => {
    expect(deviceClassOf('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148')).toBe('mobile')
    expect(deviceClassOf('okhttp/4.12.0')).toBeUndefined()
    expect(deviceClassOf(undefined)).toBeUndefined()
  })

  it('keeps a bounded amount of memory whatever agents the clients send (a request header may hold 128 KB)', () => {
    gc()
    const before = process.memoryUsage().heapUsed
    for (let i = 0; i < 300; i++) {
      // 100 KB agents, each distinct (a flat string of its own, as a request header is).
      const ua = `Mozilla/5.0 (X11; Linux x86_64) ${Buffer.alloc(100_000, `${i}-`).toString('latin1')}`
      expect(deviceClassOf(ua)).toBe('desktop')
    }
    gc()
    const retained = process.memoryUsage().heapUsed - before
    // 300 agents of 100 KB are 30 MB; the cache may hold a few MB at most.
    expect(retained).toBeLessThan(8 * 1024 * 1024)
  })
})
