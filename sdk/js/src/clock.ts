/**
 * The edge's clock as this device sees it: `offset` is the edge's time less the device's, learnt
 * from the `Date` header of the edge's own answers (a body the edge wrote, never a proxy's page).
 *
 * A `Date` is whole seconds, and the edge wrote it somewhere between the request leaving and the
 * answer arriving, so one answer says the offset lies in
 * `[date - receivedAt, date + 999 - sentAt]` (device times). The offset kept is the one already
 * held when it lies in that interval, else the point of the interval nearest to 0: the smallest
 * correction the answer proves. A device whose clock is right always sees 0 in the interval, so it
 * is never corrected; a wrong clock is corrected to within the request's round trip plus a second.
 * An offset larger than `MAX_CLOCK_OFFSET_MS` is not believed.
 *
 * A clock that jumps (set by hand, or by the network) makes an offset learnt before it wrong. With a
 * monotonic clock, a jump of more than `CLOCK_JUMP_MS` between two readings makes the offset
 * unconfirmed until the next answer (`confirmed()` is then undefined, and events made meanwhile are
 * corrected by that answer); a device asleep, whose monotonic clock stood still, looks like a jump
 * forward and costs only that.
 */
export interface EdgeClock {
  /** The offset (edge less device, ms) when one was learnt and no jump was seen since; else undefined. */
  confirmed(): number | undefined
  /** The last offset learnt, 0 before any: the best guess (signing uses it). */
  offset(): number
  /** The device's clock, ms. */
  deviceNow(): number
  /**
   * Learns from an answer of the edge sent at `sentAt` and received at `receivedAt` (device ms);
   * true when `date` was a usable HTTP date.
   */
  observe(date: string | null | undefined, sentAt: number, receivedAt: number): boolean
}

/** An offset beyond this (about a year) is taken for a broken answer, not for the device's clock. */
export const MAX_CLOCK_OFFSET_MS = 366 * 24 * 3600_000
/** A change of the device clock against the monotonic clock larger than this between two readings is a jump. */
export const CLOCK_JUMP_MS = 10_000

export function createEdgeClock(now: () => number, monotonic?: () => number): EdgeClock {
  let learnt: number | undefined
  let trusted = false
  // The device clock less the monotonic clock at the last reading: constant while the clock runs freely.
  let base: number | undefined

  /** Reads the device clock, and forgets the offset's confirmation when the clock jumped since the last reading. */
  function read(): number {
    const wall = now()
    if (monotonic) {
      const b = wall - monotonic()
      const jump = base === undefined ? 0 : b - base
      if (Math.abs(jump) > CLOCK_JUMP_MS) {
        trusted = false
        // A clock set back (a fast clock put right) cannot be a sleep: the offset moves with it. One
        // set forward may be a sleep the monotonic clock did not count, so the guess stays: a ts left
        // ahead is refused as clock_skew and corrected by that answer, never silently kept.
        if (jump < 0 && learnt !== undefined) learnt -= jump
      }
      base = b
    }
    return wall
  }

  return {
    confirmed() {
      read()
      return trusted ? learnt : undefined
    },
    offset: () => learnt ?? 0,
    deviceNow: read,
    observe(date, sentAt, receivedAt) {
      const edge = date ? Date.parse(date) : Number.NaN
      if (Number.isNaN(edge)) return false
      read()
      const lo = edge - Math.max(sentAt, receivedAt)
      const hi = edge + 999 - Math.min(sentAt, receivedAt)
      const held = learnt ?? 0
      const next = held >= lo && held <= hi ? held : Math.min(Math.max(0, lo), hi)
      if (Math.abs(next) > MAX_CLOCK_OFFSET_MS) return true
      learnt = next
      trusted = true
      return true
    },
  }
}
