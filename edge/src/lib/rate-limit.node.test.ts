import { describe, expect, it } from 'vitest'
import { TokenBuckets } from './rate-limit.js'

describe('TokenBuckets', () => {
  it('allows the burst, then refills at perSecond, and says when to retry', () => {
    let now = 0
    const b = new TokenBuckets(() => now)
    const spec = { perSecond: 10, burst: 20 }
    expect(b.take('p', spec, 20).ok).toBe(true)
    const refused = b.take('p', spec, 15)
    expect(refused).toMatchObject({ ok: false, retryAfterSeconds: 2 })
    now = 1500
    expect(b.take('p', spec, 15).ok).toBe(true)
  })

  it('one publisher draining its bucket leaves another untouched', () => {
    const b = new TokenBuckets(() => 0)
    const spec = { perSecond: 1, burst: 5 }
    for (let i = 0; i < 10; i++) b.take('noisy', spec, 5)
    expect(b.take('noisy', spec, 1).ok).toBe(false)
    expect(b.take('quiet', spec, 5).ok).toBe(true)
  })

  it('charges a request larger than the burst the whole burst instead of refusing it forever', () => {
    const b = new TokenBuckets(() => 0)
    expect(b.take('p', { perSecond: 1, burst: 3 }, 10).ok).toBe(true)
  })
})
