/**
 * The produce body's record values as the client sent them, so the gateway stores each value's own
 * JSON text instead of parsing it into objects and stringifying them back. Runs only on text that
 * `JSON.parse` already accepted, so it skips over tokens without validating them again.
 */

const WS = new Set([0x20, 0x09, 0x0a, 0x0d])

function skipWs(text: string, i: number): number {
  while (i < text.length && WS.has(text.charCodeAt(i))) i++
  return i
}

/** End (exclusive) of the string starting at `i` (a '"'). */
function skipString(text: string, i: number): number {
  let j = i + 1
  for (;;) {
    const k = text.indexOf('"', j)
    if (k < 0) return text.length
    let slashes = 0
    for (let b = k - 1; text.charCodeAt(b) === 0x5c; b--) slashes++
    if (slashes % 2 === 0) return k + 1
    j = k + 1
  }
}

/** End (exclusive) of the value starting at `i`. */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i)
  if (c === 0x22) return skipString(text, i)
  if (c === 0x7b || c === 0x5b) {
    let depth = 0
    let j = i
    const n = text.length
    while (j < n) {
      const d = text.charCodeAt(j)
      if (d === 0x22) {
        j = skipString(text, j)
        continue
      }
      if (d === 0x7b || d === 0x5b) depth++
      else if ((d === 0x7d || d === 0x5d) && --depth === 0) return j + 1
      j++
    }
    return j
  }
  let j = i
  while (j < text.length) {
    const d = text.charCodeAt(j)
    if (d === 0x2c || d === 0x7d || d === 0x5d || WS.has(d)) break
    j++
  }
  return j
}

function readKey(text: string, i: number): { key: string; end: number } {
  const end = skipString(text, i)
  const raw = text.slice(i + 1, end - 1)
  return { key: raw.includes('\\') ? (JSON.parse(text.slice(i, end)) as string) : raw, end }
}

/**
 * Calls `member` for each member of the object at `i` with the key and the value's span; returns the
 * object's end. Undefined when `i` is not an object.
 */
function members(text: string, i: number, member: (key: string, start: number, end: number) => void): number | undefined {
  if (text.charCodeAt(i) !== 0x7b) return undefined
  let j = skipWs(text, i + 1)
  if (text.charCodeAt(j) === 0x7d) return j + 1
  for (;;) {
    const { key, end } = readKey(text, j)
    j = skipWs(text, end)
    j = skipWs(text, j + 1) // ':'
    const valueEnd = skipValue(text, j)
    member(key, j, valueEnd)
    j = skipWs(text, valueEnd)
    if (text.charCodeAt(j) === 0x2c) {
      j = skipWs(text, j + 1)
      continue
    }
    return j + 1
  }
}

/**
 * The JSON text of `records[i].value` for each record of a produce body (`undefined` where a record
 * has no value), the last occurrence winning like `JSON.parse`; undefined when the body is not an
 * object whose `records` is an array of objects (the caller then stringifies the parsed values).
 */
export function recordValueTexts(text: string): (string | undefined)[] | undefined {
  let records: (string | undefined)[] | undefined
  let shapeOk = true
  const top = members(text, skipWs(text, 0), (key, start) => {
    if (key !== 'records') return
    if (text.charCodeAt(start) !== 0x5b) {
      records = undefined
      return
    }
    const out: (string | undefined)[] = []
    let j = skipWs(text, start + 1)
    if (text.charCodeAt(j) !== 0x5d) {
      for (;;) {
        let value: string | undefined
        const end = members(text, j, (k, s, e) => {
          if (k === 'value') value = text.slice(s, e)
        })
        if (end === undefined) {
          shapeOk = false
          return
        }
        out.push(value)
        j = skipWs(text, end)
        if (text.charCodeAt(j) === 0x2c) {
          j = skipWs(text, j + 1)
          continue
        }
        break
      }
    }
    records = out
  })
  if (top === undefined || !shapeOk) return undefined
  return records
}
