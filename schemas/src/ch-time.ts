/**
 * `2026-11-23 10:00:00.123`: the DateTime64(3, 'UTC') text ClickHouse parses, both in a query
 * parameter and in TabSeparated/JSONEachRow input. One definition for every reader and writer.
 */
export function chTime(ms: number): string {
  const second = Math.floor(ms / 1000)
  // Rows of a batch mostly share their seconds: each second is formatted once. A row carries three
  // times (event, edge, processing) in different seconds, so the cache holds a few, by second.
  const slot = second & (SECOND_SLOTS - 1)
  let text: string
  if (cachedSecond[slot] === second) text = cachedText[slot]!
  else {
    text = new Date(second * 1000).toISOString().slice(0, 19).replace('T', ' ')
    cachedSecond[slot] = second
    cachedText[slot] = text
  }
  const milli = ms - second * 1000
  return text + (milli < 10 ? '.00' : milli < 100 ? '.0' : '.') + milli
}
const SECOND_SLOTS = 16
const cachedSecond = new Float64Array(SECOND_SLOTS).fill(Number.NaN)
const cachedText: string[] = new Array<string>(SECOND_SLOTS).fill('')
