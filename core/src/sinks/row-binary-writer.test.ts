import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { MAX_DATETIME64_MS, RowBinaryWriter } from './row-binary-writer.js'

/** Reads back what the writer wrote: LEB128 lengths, UTF-8 bytes, little-endian numbers. */
class Reader {
  pos = 0
  constructor(private readonly b: Buffer) {}
  varUInt(): number {
    let n = 0
    let mul = 1
    for (;;) {
      const byte = this.b[this.pos++]!
      n += (byte & 0x7f) * mul
      if (byte < 0x80) return n
      mul *= 0x80
    }
  }
  str(): string {
    const n = this.varUInt()
    const s = this.b.toString('utf8', this.pos, this.pos + n)
    this.pos += n
    return s
  }
  i64(): number {
    const v = this.b.readBigInt64LE(this.pos)
    this.pos += 8
    return Number(v)
  }
}

describe('RowBinaryWriter', () => {
  it('writes any well-formed string as its UTF-8 byte length and bytes, short, long and non-ASCII alike', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: fc.constantFrom('a', 'é', '\t', '😀'), maxLength: 300 }), fc.string({ minLength: 126, maxLength: 130 }), fc.constant('x'.repeat(20_000)))), (xs) => {
        const w = new RowBinaryWriter(4) // tiny: every test grows the buffer
        for (const x of xs) w.str(x)
        const r = new Reader(w.bytes())
        expect(xs.map(() => r.str())).toEqual(xs)
        expect(r.pos).toBe(w.length)
      }),
      { numRuns: 300 },
    )
  })

  it('writes numbers little-endian and arrays with their length', () => {
    const w = new RowBinaryWriter(1)
    w.u8(1).i8(-1).u32(4_000_000_000).f32(0.85).i64(1_795_455_805_257).i64(2 ** 53 - 1).strings(['a', 'b\\c']).dt64(1_795_455_805_257)
    const b = w.bytes()
    expect([b[0], b.readInt8(1), b.readUInt32LE(2), b.readFloatLE(6)]).toEqual([1, -1, 4_000_000_000, Math.fround(0.85)])
    const r = new Reader(b)
    r.pos = 10
    expect([r.i64(), r.i64(), r.varUInt(), r.str(), r.str(), r.i64()]).toEqual([1_795_455_805_257, 2 ** 53 - 1, 2, 'a', 'b\\c', 1_795_455_805_257])
    expect(w.refusal).toBeUndefined()
  })

  it('writes every safe integer, negative ones (signed rollup counts) in two\'s complement', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.maxSafeInteger(), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }))), (xs) => {
        const w = new RowBinaryWriter(1)
        for (const x of xs) w.i64(x)
        const r = new Reader(w.bytes())
        expect(xs.map(() => r.i64())).toEqual(xs)
      }),
      { numRuns: 300 },
    )
  })

  it('marks the body refused for a UInt32 out of range (a rollup minute past 2106), where the engine would have wrapped it', () => {
    const w = new RowBinaryWriter(1)
    w.u32(0).u32(4_294_967_295)
    expect(w.refusal).toBeUndefined()
    w.u32(Math.floor(Date.UTC(2200, 0, 1) / 60_000) * 60)
    expect(w.refusal).toMatch(/^Code: 321\./)
  })

  it('marks the body refused for a lone surrogate, which UTF-8 cannot carry, and not for a pair', () => {
    const w = new RowBinaryWriter(1)
    w.str('😀 ok')
    expect(w.refusal).toBeUndefined()
    w.str('u\ud800')
    expect(w.refusal).toMatch(/^Code: 25\./)
  })

  it('marks a long string with a lone surrogate refused too (long strings take the native encoder) and writes the good ones beside it exactly', () => {
    const ok = `${'a'.repeat(70)}😀`
    const w = new RowBinaryWriter(1)
    w.str(ok).str('é'.repeat(200))
    expect(w.refusal).toBeUndefined()
    w.str(`${'b'.repeat(70)}\udc00${'c'.repeat(10)}`)
    expect(w.refusal).toMatch(/^Code: 25\./)
    const r = new Reader(w.bytes())
    expect([r.str(), r.str()]).toEqual([ok, 'é'.repeat(200)])
  })

  it('marks the body refused for a time no DateTime64 of years 1970–9999 holds, as the engine refused it in text', () => {
    for (const ms of [MAX_DATETIME64_MS, 6e15, -1]) {
      const w = new RowBinaryWriter()
      w.dt64(MAX_DATETIME64_MS - 1).dt64(ms)
      expect(w.refusal).toMatch(/^Code: 41\./)
    }
  })

  it('starts over on reset: the same bytes as a new writer, no refusal kept, the buffer kept', () => {
    const w = new RowBinaryWriter(16)
    w.str('é'.repeat(3000)).dt64(-1) // grown past Buffer's shared pool: a buffer of its own
    const buffer = w.bytes().buffer
    w.reset().str('abc').u32(7)
    expect(w.refusal).toBeUndefined()
    expect(w.bytes().equals(new RowBinaryWriter().str('abc').u32(7).bytes())).toBe(true)
    expect(w.bytes().buffer).toBe(buffer)
  })
})
