import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ID_PATTERN } from '@adc/schemas'
import { clientAddress, clientShareKey, clientUnits, takeClientShare } from './client-limit.js'

describe('clientAddress', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    [' 203.0.113.7 ', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
  ])('%j → %j', (ip, address) => {
    expect(clientAddress(ip)).toBe(address)
  })

  it.each([undefined, '', 'unknown', '1.2.3', '203.0.113.7, 10.0.0.1', '2001:db8::1::2'])('no address in %j', (ip) => {
    expect(clientAddress(ip)).toBeUndefined()
  })

  it('gives every address of one IPv6 /64 the same share, and no two /64s one', () => {
    const group = fc.integer({ min: 0, max: 0xffff })
    const groups = fc.array(group, { minLength: 4, maxLength: 4 })
    const spell = (gs: number[]) => gs.map((g) => g.toString(16)).join(':')
    // The first group is kept off 0 so that no generated address is IPv4-mapped.
    fc.assert(fc.property(fc.integer({ min: 1, max: 0xffff }), groups, groups, groups, (g0, net, hostA, hostB) => {
      const prefix = [g0, ...net.slice(1)]
      const a = clientAddress(spell([...prefix, ...hostA]))
      expect(a).toBeDefined()
      expect(clientAddress(spell([...prefix, ...hostB]))).toBe(a)
      const otherPrefix = [...prefix]
      otherPrefix[3] = (otherPrefix[3]! + 1) % 0x10000
      expect(clientAddress(spell([...otherPrefix, ...hostA]))).not.toBe(a)
    }))
  })
})

describe('the units of a request', () => {
  it('are one per started 50 events', () => {
    expect([1, 49, 50, 51, 100, 500].map(clientUnits)).toEqual([1, 1, 1, 2, 2, 10])
  })
})

describe('the share key', () => {
  it('never lets two publishers share a key (the address follows a character no id holds)', () => {
    const id = fc.stringMatching(ID_PATTERN)
    fc.assert(fc.property(id, id, fc.ipV4(), fc.ipV4(), (p, q, a, b) => {
      fc.pre(p !== q)
      expect(clientShareKey(p, clientAddress(a)!)).not.toBe(clientShareKey(q, clientAddress(b)!))
    }))
  })
})

describe('takeClientShare', () => {
  const binding = (allowed: number) => {
    const keys: string[] = []
    return { keys, limit: async ({ key }: { key: string }) => ({ success: keys.push(key) <= allowed }) }
  }

  it('takes every unit of a request, and refuses it when any does not fit', async () => {
    const b = binding(12)
    expect(await takeClientShare({ CLIENT_LIMIT: b }, 'public_key', 'pub_a', '203.0.113.7', 500)).toBe(true)
    expect(b.keys).toEqual(Array(10).fill('pub_a/203.0.113.7'))
    expect(await takeClientShare({ CLIENT_LIMIT: b }, 'public_key', 'pub_a', '203.0.113.7', 150)).toBe(false)
  })

  it('counts only what anyone can send: the public key, app-scope signatures and tokens, not a server key or a server-scope request signature', async () => {
    const b = binding(0)
    expect(await takeClientShare({ CLIENT_LIMIT: b }, 'server_key', 'pub_a', '203.0.113.7', 500)).toBe(true)
    expect(await takeClientShare({ CLIENT_LIMIT: b }, 'request_signature', 'pub_a', '203.0.113.7', 500)).toBe(true)
    expect(b.keys).toEqual([])
    expect(await takeClientShare({ CLIENT_LIMIT: b }, 'token', 'pub_a', '203.0.113.7', 1)).toBe(false)
    expect(await takeClientShare({ CLIENT_LIMIT: b }, 'public_key', 'pub_a', '203.0.113.7', 1)).toBe(false)
    expect(await takeClientShare({ CLIENT_LIMIT: b }, 'app_signature', 'pub_a', '203.0.113.7', 1)).toBe(false)
  })

  it('counts nothing without the binding or an address, and fails open when the binding throws', async () => {
    expect(await takeClientShare({}, 'public_key', 'pub_a', '203.0.113.7', 500)).toBe(true)
    const b = binding(0)
    expect(await takeClientShare({ CLIENT_LIMIT: b }, 'public_key', 'pub_a', undefined, 1)).toBe(true)
    expect(b.keys).toEqual([])
    const broken = { limit: async () => { throw new Error('down') } }
    expect(await takeClientShare({ CLIENT_LIMIT: broken }, 'token', 'pub_a', '203.0.113.7', 1)).toBe(true)
  })
})
