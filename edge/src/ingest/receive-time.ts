/**
 * The edge's receive time of a request (epoch ms), stamped into every envelope it forwards.
 *
 * Core's accounting counts one acceptance per envelope, that is per (idempotency key, receive time):
 * a produce the forwarder retries after it was stored repeats the envelope, and is counted once
 * (core/src/api/routes/reports.ts). Two requests carrying the same event that both get past the
 * pre-filter are two acceptances, so they must not share a receive time. workerd's clock moves only
 * between I/O, and requests an isolate takes in together read the same millisecond: here each one
 * gets a time of its own, a millisecond after the last when the clock has not moved, never more than
 * `RECEIVE_TIME_LEAD_MS` ahead of the clock (past that lead, stamps may repeat again).
 */
export const RECEIVE_TIME_LEAD_MS = 50

/** A receive clock over `clock`: strictly increasing within its bounded lead. */
export function createReceiveClock(clock: () => number = Date.now): () => number {
  let last = -Infinity
  return () => {
    const now = clock()
    const t = now > last ? now : Math.min(last + 1, now + RECEIVE_TIME_LEAD_MS)
    if (t > last) last = t
    return t
  }
}

/** This isolate's receive clock. */
export const receiveTime = createReceiveClock()
