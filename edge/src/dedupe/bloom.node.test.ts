import { describe, expect, it } from 'vitest'
import { RotatingBloom } from './bloom.js'

describe('RotatingBloom', () => {
  it('remembers a key for at least one generation and forgets it after two', () => {
    let now = 0
    const b = new RotatingBloom({ capacity: 1000, fpRate: 0.001, generationMs: 100, now: () => now })
    b.add('k')
    now = 150
    expect(b.has('k')).toBe(true)
    now = 260
    b.add('other')
    expect(b.has('k')).toBe(false)
  })

  it('rotates early when a generation is full', () => {
    const b = new RotatingBloom({ capacity: 10, fpRate: 0.01, generationMs: 1e12 })
    for (let i = 0; i < 25; i++) b.add(`k${i}`)
    expect(b.rotations).toBe(2)
    expect(b.has('k24')).toBe(true)
  })
})
