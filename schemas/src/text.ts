import { z } from 'zod'

/**
 * Text that every stage can carry: well-formed Unicode without control characters.
 *
 * Refused: lone UTF-16 surrogates (valid JSON, `"\ud800"`, but not Unicode text: JSON.stringify
 * writes them back as `\ud800` escapes, which ClickHouse's JSON input formats refuse with
 * CANNOT_PARSE_ESCAPE_SEQUENCE, and UTF-8 cannot encode them at all), C0 controls U+0000-U+001F
 * (tab and newline included: no field of an event is multi-line text, and U+001F is the idempotency
 * key's separator), DEL U+007F and the C1 controls U+0080-U+009F (invisible, and what a Latin-1
 * decoding of stray header bytes turns into).
 */
const DISALLOWED = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const DISALLOWED_ALL = new RegExp(DISALLOWED.source, 'g')
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const LONE_SURROGATE_ALL = new RegExp(LONE_SURROGATE.source, 'g')

/** Why `s` is not clean text, or undefined when it is. */
export function textProblem(s: string): string | undefined {
  const m = DISALLOWED.exec(s)
  if (!m) return undefined
  const code = m[0].charCodeAt(0)
  const hex = code.toString(16).toUpperCase().padStart(4, '0')
  return code >= 0xd800 && code <= 0xdfff
    ? `must be well-formed Unicode (lone surrogate U+${hex} at index ${m.index})`
    : `must not contain control characters (U+${hex} at index ${m.index})`
}

export function isCleanText(s: string): boolean {
  return !DISALLOWED.test(s)
}

/** `s` with every refused character replaced by U+FFFD: for values the edge observes itself (headers). */
export function cleanText(s: string): string {
  return DISALLOWED.test(s) ? s.replace(DISALLOWED_ALL, '\ufffd') : s
}

export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s)
}

/**
 * `s` as a string of its own. A substring V8 cuts from a longer string (`slice`, from 13 characters
 * on) points into that string and keeps all of it alive, and the processor's envelope reader
 * (core/src/pipeline/steps/envelope-scan.ts) gives an event's fields as such cuts of the record's
 * text. A structure that keeps a field past its event (a cache, a counter's key) keeps this copy
 * instead: the field's characters, not the whole record. Costs a copy: for a new key, not per lookup.
 */
export function detachedText(s: string): string {
  // Cutting a string made of two pieces copies both into one new string first, then cuts that.
  return (' ' + s).slice(1)
}

/** `s` with lone surrogates replaced by U+FFFD (String.prototype.toWellFormed, ES2024). */
export function toWellFormed(s: string): string {
  return LONE_SURROGATE.test(s) ? s.replace(LONE_SURROGATE_ALL, '\ufffd') : s
}

/** The first `max` UTF-16 units of `s`, one fewer if that would split a surrogate pair. */
export function truncateText(s: string, max: number): string {
  if (s.length <= max) return s
  const last = s.charCodeAt(max - 1)
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max)
}

/**
 * A string schema for client-controlled text: `z.string()` plus the checks above. The issue's
 * message names the problem; zod puts the field's path beside it.
 * @example const placement = text().max(128).optional()
 */
export function text() {
  return z.string().superRefine((s, ctx) => {
    const problem = textProblem(s)
    if (problem) ctx.addIssue({ code: 'custom', message: problem })
  })
}
