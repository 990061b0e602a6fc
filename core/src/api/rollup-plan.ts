/**
 * Which rollup serves which part of a metrics read. `rollup_minute` keeps its rows
 * `minuteRollupDays` (a ClickHouse TTL, clickhouse/retention.ts); `rollup_hour` is the same rows
 * summed per hour by a materialized view and kept far longer. So:
 * - whole hours come from `rollup_hour` whenever the answer is per hour (cheaper, and the only
 *   source once the minute rows are gone);
 * - a partial hour at either end comes from `rollup_minute` while its minutes are kept, and is
 *   widened to its whole hour otherwise (the hourly rollup cannot answer part of an hour);
 * - a per-minute answer whose range reaches before the kept minutes is served per hour: the
 *   buckets before the bound no longer exist per minute, and a chart mixing minute and hour
 *   buckets would read as a cliff.
 * Pieces are half-open and cut on hour boundaries, so no minute is read from both tables.
 */

import { keptFrom } from '../clickhouse/retention.js'

export { TTL_MARGIN_MS } from '../clickhouse/retention.js'

export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000

export type Granularity = 'minute' | 'hour'

export interface RollupPlan {
  /** What the answer's buckets are: the asked granularity, or `hour` (see above). */
  granularity: Granularity
  /** The range the numbers cover: the asked one, widened to whole hours where minutes expired. */
  from: number
  to: number
  /** Whole hours read from the hourly rollup, [from, to); absent when none. */
  hours?: [number, number]
  /** Ranges read from the minute rollup, [from, to) each. */
  minutes: Array<[number, number]>
}

const floorHour = (t: number) => Math.floor(t / HOUR_MS) * HOUR_MS
const ceilHour = (t: number) => Math.ceil(t / HOUR_MS) * HOUR_MS

/** The earliest minute the minute rollup surely still holds at `now`; -Infinity when kept forever (0 days). */
export function minuteRowsKeptFrom(now: number, minuteRollupDays: number): number {
  return keptFrom(now, minuteRollupDays)
}

/**
 * The part of [from, to) the hourly rollup surely still holds at `now` (RETENTION_HOURLY_ROLLUP_DAYS;
 * 0 keeps it forever): `from` moved up to the first whole hour still kept, or undefined when none of
 * the range is. Older rows are gone from every rollup, so a range reaching before them is answered
 * for the part that is kept, and says so, rather than read as zeros.
 */
export function retainedRange(from: number, to: number, now: number, hourlyRollupDays: number): { from: number; to: number } | undefined {
  const kept = ceilHour(keptFrom(now, hourlyRollupDays))
  if (to <= kept) return undefined
  return { from: Math.max(from, kept), to }
}

/**
 * Splits [from, to) between the hourly and the minute rollup.
 * @example
 * planRollupRead({ from, to, granularity: 'minute', now: Date.now(), minuteRollupDays: 35 })
 */
export function planRollupRead(q: { from: number; to: number; granularity: Granularity; now: number; minuteRollupDays: number }): RollupPlan {
  const kept = minuteRowsKeptFrom(q.now, q.minuteRollupDays)
  if (q.granularity === 'minute' && q.from >= kept) return { granularity: 'minute', from: q.from, to: q.to, minutes: [[q.from, q.to]] }
  // A partial hour whose minutes may be gone is widened to its hour.
  const from = q.from >= kept ? q.from : floorHour(q.from)
  const to = Math.max(q.from, floorHour(q.to)) >= kept ? q.to : ceilHour(q.to)
  const wholeFrom = ceilHour(from)
  const wholeTo = floorHour(to)
  if (wholeFrom >= wholeTo) return { granularity: 'hour', from, to, minutes: [[from, to]] }
  const minutes: Array<[number, number]> = []
  if (from < wholeFrom) minutes.push([from, wholeFrom])
  if (wholeTo < to) minutes.push([wholeTo, to])
  return { granularity: 'hour', from, to, hours: [wholeFrom, wholeTo], minutes }
}
