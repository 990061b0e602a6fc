import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { clientFactsSchema } from '@adc/schemas'
import { clientFacts, ipHash, parseIp, truncateIp } from './privacy.js'

const DAY = 86_400_000

describe('truncateIp', () => {
  it.each([
    ['203.0.113.77', '203.0.113.0/24'],
    ['2001:db8:85a3:1234:5678:8a2e:370:7334', '2001:db8:85a3::/48'],
    ['2001:db8::1', '2001:db8:0::/48'],
    ['::ffff:198.51.100.9', '198.51.100.0/24'],
    ['::1', '0:0:0::/48'],
  ])('%s → %s', (ip, prefix) => {
    expect(truncateIp(ip)).toBe(prefix)
  })

  it.each(['', '1.2.3', '256.1.1.1', '1:2:3:4:5:6:7:8:9', '1::2::3', 'abc', '12345::', '1:2:3:4:5:6:7::8'])('refuses %j', (ip) => {
    expect(truncateIp(ip)).toBeUndefined()
  })

  it('never contains the host part of an IPv4 address', () => {
    fc.assert(fc.property(fc.ipV4(), (ip) => {
      const prefix = truncateIp(ip)!
      expect(prefix.endsWith('.0/24')).toBe(true)
      expect(prefix.split('.').slice(0, 3)).toEqual(ip.split('.').slice(0, 3).map((p) => String(Number(p))))
    }))
  })

  it('parses every IPv6 form fast-check generates', () => {
    fc.assert(fc.property(fc.ipV6(), (ip) => {
      expect(parseIp(ip)).not.toBeNull()
    }))
  })
})

describe('ipHash', () => {
  it('is stable within a UTC day, changes with the day, and differs between secrets', async () => {
    const t = Date.UTC(2026, 0, 10, 1)
    const a = await ipHash('203.0.113.77', 's', t)
    expect(await ipHash('203.0.113.77', 's', t + 3600_000)).toBe(a)
    expect(await ipHash('203.0.113.77', 's', t + DAY)).not.toBe(a)
    expect(await ipHash('203.0.113.77', 'other', t)).not.toBe(a)
    expect(a).toMatch(/^[0-9a-f]{32}$/)
  })

  it('treats the IPv4-mapped form as the same client', async () => {
    expect(await ipHash('::ffff:203.0.113.77', 's', 0)).toBe(await ipHash('203.0.113.77', 's', 0))
  })
})

describe('clientFacts', () => {
  it('keeps only what fraud detection needs without consent (agent and network prefix, no hash that tells users apart), and never the raw IP', async () => {
    expect(await clientFacts({ ua: 'x', ip: '203.0.113.77' }, false, 's', 0)).toEqual({ ua: 'x', ipPrefix: '203.0.113.0/24' })
    const facts = await clientFacts({ ua: 'x', ip: '203.0.113.77' }, undefined, 's', 0)
    expect(Object.keys(facts).sort()).toEqual(['ipHash', 'ipPrefix', 'ua'])
    expect(JSON.stringify(facts)).not.toContain('113.77')
  })

  it('keeps any observed user agent as text the envelope accepts: controls replaced, cut without splitting a pair', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ unit: fc.oneof(fc.constantFrom('a', '😀', '\u0085', '\u0000', '\u007f', 'é'), fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c))), maxLength: 1100 }), async (ua) => {
      fc.pre(ua.length > 0)
      const facts = await clientFacts({ ua }, undefined, 's', 0)
      expect(clientFactsSchema.safeParse(facts).success).toBe(true)
      expect(facts.ua!.length).toBeGreaterThanOrEqual(Math.min(ua.length, 1023))
    }), { numRuns: 200 })
    const facts = await clientFacts({ ua: 'a'.repeat(1023) + '😀' }, undefined, 's', 0)
    expect(facts.ua).toBe('a'.repeat(1023))
  })
})
