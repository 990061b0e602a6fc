/**
 * Key layout of a partition store (core/src/state/partition-store.ts). One prefix per family keeps
 * range scans (expiry) cheap and the byte cost per key visible.
 *
 * - Delivery dedupe (edge idempotency key → first-seen offset) is not here: it has a binary database
 *   of its own in the same environment (delivery-index.ts).
 * - `i:<impressionId>` → ImpressionState: first impression / first click offsets (business dedupe, join).
 * - `w:<impressionId>` → WaitingClick[]: clicks waiting for their impression, or orphaned ones that a
 *   late impression can still join.
 * - IVT burst counters are not here either: burst-counters.ts.
 * - `x:<due minute>:<batch max offset>` → keys: expiry schedule (of `i:` keys), one entry per minute and batch; swept
 *   when the partition watermark passes.
 * - `q:<due ms>:<impressionId>` → null: join deadlines (window end, then lateness end).
 * - `~wm` → partition watermark (max edge receivedAt seen, epoch ms).
 * - `~waiting` → clicks currently waiting for their impression.
 */
export const WATERMARK_KEY = '~wm'
/** Number of clicks waiting for their impression in this partition. */
export const WAITING_COUNT_KEY = '~waiting'

export function pad(n: number, width = 15): string {
  return Math.max(0, Math.floor(n)).toString().padStart(width, '0')
}

export const impressionKey = (impressionId: string): string => `i:${impressionId}`
export const waitingKey = (impressionId: string): string => `w:${impressionId}`
export const joinDeadlineKey = (dueMs: number, impressionId: string): string => `q:${pad(dueMs)}:${impressionId}`

export interface ImpressionState {
  /** Offset of the first (billable) impression, when seen. */
  io?: number
  /** Its event time, epoch ms. */
  its?: number
  /** Its channel. */
  ich?: string
  /** Offset of the first click, when seen. */
  co?: number
  /** Edge receive time of the last impression / click sighting (dedupe horizon, rules/rules.ts). */
  il?: number
  cl?: number
  /** When the key may be swept: the last sighting plus the state TTL (expiry.ts skips it before). */
  ex?: number
}
