/**
 * JSON for Iceberg metadata: snapshot ids written by other engines use all 63 bits, beyond a JS
 * number's 53, so such integers are read as bigint and written back unchanged.
 */
const MARK = '__adc_bigint__:'

export function parseJson<T>(text: string): T {
  const marked = text.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, `$1"${MARK}$2"`)
  return JSON.parse(marked, (_k, v: unknown) => {
    if (typeof v !== 'string' || !v.startsWith(MARK)) return v
    const n = BigInt(v.slice(MARK.length))
    return Number.isSafeInteger(Number(n)) ? Number(n) : n
  }) as T
}

export function stringifyJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${MARK}${v}` : v), indent).replace(new RegExp(`"${MARK}(-?\\d+)"`, 'g'), '$1')
}
