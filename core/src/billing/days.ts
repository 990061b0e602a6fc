/** UTC day helpers: days travel as `YYYY-MM-DD`, times to ClickHouse as `YYYY-MM-DD hh:mm:ss.mmm` (UTC). */
export const DAY_MS = 86_400_000

export const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/

export function isValidDay(day: string): boolean {
  if (!DAY_PATTERN.test(day)) return false
  const t = Date.parse(`${day}T00:00:00Z`)
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === day
}

export function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00Z`)
}

export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

export function addDays(day: string, n: number): string {
  return dayOf(dayStart(day) + n * DAY_MS)
}

export function daysBetween(from: string, to: string): string[] {
  const out: string[] = []
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d)
  return out
}
