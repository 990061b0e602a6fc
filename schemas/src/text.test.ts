import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ulid } from 'ulid'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { cleanText, detachedText, isCleanText, isWellFormed, text, textProblem, toWellFormed, truncateText } from './text.js'
import { clickEventSchema, impressionEventSchema, typedEventSchema } from './events.js'
import { envelopeSchema } from './envelope.js'

/** Any UTF-16 unit, lone surrogates and controls included, mixed with ordinary text. */
const unitArb = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('a', 'é', '😀', '\ud800', '\udfff', '\u0000', '\t', '\u007f', '\u0085', '\u009f', '\u00a0', '\ufffd'),
)
const awkward = fc.string({ unit: unitArb, maxLength: 40 })
const bad = fc.constantFrom('\ud800', '\udc00', 'a\udbffb', '\u0000', '\t', '\n', '\u001f', '\u007f', '\u0080', '\u009f')

const refusedBy = (s: string): boolean => [...s].some((ch) => {
  const c = ch.codePointAt(0)!
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff)
})

describe('clean text', () => {
  it('refuses exactly the strings with a lone surrogate or a C0, DEL or C1 control', () => {
    fc.assert(fc.property(awkward, (s) => {
      expect(isCleanText(s)).toBe(!refusedBy(s))
      expect(textProblem(s) === undefined).toBe(!refusedBy(s))
      expect(isWellFormed(s)).toBe(![...s].some((ch) => { const c = ch.codePointAt(0)!; return c >= 0xd800 && c <= 0xdfff }))
    }))
  })

  it('cleanText and toWellFormed answer text that passes, and change nothing that already did', () => {
    fc.assert(fc.property(awkward, (s) => {
      expect(isCleanText(cleanText(s))).toBe(true)
      expect(cleanText(s).length).toBe(s.length)
      expect(isWellFormed(toWellFormed(s))).toBe(true)
      if (isCleanText(s)) expect(cleanText(s)).toBe(s)
      if (isWellFormed(s)) expect(toWellFormed(s)).toBe(s)
      // UTF-8 round trip is lossless once well-formed.
      expect(Buffer.from(toWellFormed(s), 'utf8').toString('utf8')).toBe(toWellFormed(s))
    }))
  })

  it('truncates without splitting a surrogate pair', () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom('a', '😀', 'é'), maxLength: 30 }), fc.integer({ min: 1, max: 30 }), (s, max) => {
      const t = truncateText(s, max)
      expect(t.length).toBeLessThanOrEqual(max)
      expect(isWellFormed(t)).toBe(true)
      expect(s.startsWith(t)).toBe(true)
    }))
  })

  it('names the problem and where it is', () => {
    expect(text().safeParse('ok é 😀').success).toBe(true)
    expect(textProblem('ab\ud800')).toBe('must be well-formed Unicode (lone surrogate U+D800 at index 2)')
    expect(textProblem('a\u0085')).toBe('must not contain control characters (U+0085 at index 1)')
  })
})

const now = Date.UTC(2026, 10, 23, 12, 0, 0)
const base = { eventId: ulid(), ts: now, adId: 'a', campaignId: 'c', publisherId: 'p', requestId: 'r', impressionId: 'i' }
const eventTextFields = ['userKey', 'placement', 'ua', 'ts'] as const

describe('every string field of the event schemas refuses unclean text, naming the field', () => {
  it('impression, click and typed (beacon) events', () => {
    fc.assert(fc.property(fc.constantFrom(...eventTextFields), bad, fc.constantFrom('impression', 'click', 'typed'), (field, s, kind) => {
      const ev = { ...base, [field]: field === 'ts' ? `2026-11-23T12:00:00Z${s}` : `x${s}y` }
      const parsed = kind === 'impression' ? impressionEventSchema.safeParse(ev)
        : kind === 'click' ? clickEventSchema.safeParse({ ...ev, clickId: 'k' })
        : typedEventSchema.safeParse({ ...ev, type: 'impression' })
      expect(parsed.success).toBe(false)
      expect(parsed.error!.issues[0]!.path).toEqual([field])
    }))
  })

  it('id fields, geo and eventId refuse them by their pattern', () => {
    for (const field of ['eventId', 'adId', 'campaignId', 'publisherId', 'requestId', 'impressionId', 'geo']) {
      for (const s of ['\ud800', '\u0000', '\u0085']) {
        const parsed = impressionEventSchema.safeParse({ ...base, [field]: `A${s}` })
        expect(parsed.success).toBe(false)
        expect(parsed.error!.issues[0]!.path).toEqual([field])
      }
    }
    expect(clickEventSchema.safeParse({ ...base, clickId: 'k\ud800' }).error!.issues[0]!.path).toEqual(['clickId'])
  })

  it('the envelope refuses them in edge and client facts', () => {
    const env = { v: 1, type: 'impression', key: 'a'.repeat(32), receivedAt: now, event: base, edge: { dedupe: 'new', source: 'batch' }, client: {} }
    expect(envelopeSchema.safeParse(env).success).toBe(true)
    fc.assert(fc.property(fc.constantFrom(['edge', 'colo'], ['edge', 'country'], ['client', 'ua'], ['client', 'ipPrefix'], ['client', 'ipHash'], ['event', 'userKey'], ['event', 'placement']), bad, ([part, field], s) => {
      const parsed = envelopeSchema.safeParse({ ...env, [part!]: { ...(env as unknown as Record<string, object>)[part!], [field!]: s } })
      expect(parsed.success).toBe(false)
      expect(parsed.error!.issues[0]!.path).toEqual([part, field])
    }))
  })

  it('well-formed text of any script still passes', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (s) => {
      fc.pre(isCleanText(s))
      expect(impressionEventSchema.safeParse({ ...base, ua: s, placement: s.slice(0, 0) + truncateText(s, 128) }).success).toBe(true)
    }))
  })
})

describe('detachedText', () => {
  /** Heap bytes still in use after a full collection, for 32 cuts of 110 characters from 1 MB records, each kept by `keep`. */
  function retained(keep: (cut: string) => string): number {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    gc()
    const before = process.memoryUsage().heapUsed
    const kept: string[] = []
    for (let i = 0; i < 32; i++) {
      // Decoded from bytes, as a log gives a record: one flat string of its own.
      const record = Buffer.from(`{"ua":"${i} ${'Mozilla/5.0 '.repeat(87_000)}"}`).toString()
      kept.push(keep(record.slice(7, 117)))
    }
    gc()
    gc()
    expect(kept.every((k) => k.length === 110)).toBe(true)
    return process.memoryUsage().heapUsed - before
  }

  it('gives the same text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.nat(), (s, at) => {
      const cut = s.slice(at % (s.length + 1))
      expect(detachedText(cut)).toBe(cut)
    }))
  })

  it('keeps no longer string alive, where the cut itself keeps its whole record', () => {
    expect(retained((cut) => cut)).toBeGreaterThan(24 * 2 ** 20)
    expect(retained(detachedText)).toBeLessThan(4 * 2 ** 20)
  })
})
