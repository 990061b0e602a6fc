/**
 * One CSV field (RFC 4180: quoted when it holds a comma, quote or line break). A text value that a
 * spreadsheet would read as a formula (starting with `=`, `+`, `-` or `@`) is prefixed with `'`: ids
 * come from a restricted alphabet, but `-A1` is still a cell reference. Numbers are written as they are.
 */
export function csvField(v: string | number): string {
  const s = String(v)
  const safe = typeof v === 'string' && /^[=+\-@]/.test(s) ? `'${s}` : s
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}
