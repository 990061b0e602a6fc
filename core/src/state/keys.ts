/**
 * Key layout of a partition store (core/src/state/partition-store.ts). One prefix per family keeps
 * range scans (expiry) cheap and the byte cost per key visible.
 *
 * - Delivery dedupe (edge idempotency key → first-seen offset) is not here: it has a binary database
 *   of its own in the same environment (delivery-index.ts).
 * - `i:<scope>` → ImpressionState: first impression / first click offsets (business dedupe, join),
 *   where `<scope>` is `impressionScope(publisherId, impressionId)`: an impression id is the client's,
 *   so it names an impression only within the publisher whose credential sent it. Held by the
 *   impression index (impression-index.ts, by the hour the state expires in), not the main database.
 * - `w:<scope>` → WaitingClick[]: clicks waiting for their impression, or orphaned ones that a
 *   late impression can still join.
 * - IVT burst counters are not here either: burst-counters.ts.
 * - `x:<due minute>:<batch max offset>` → keys: expiry schedule (the edge-stats worker's keys; `i:` keys
 *   of stores before format 5), one entry per minute and batch; swept
 *   when the partition watermark passes.
 * - `q:<due ms>:<scope>` → null: join deadlines (window end, then lateness end).
 * Stores of format 2 keyed these three families by the impression id alone (partition-store.ts
 * upgrades them).
 * - `~wm` → partition watermark (max edge receivedAt seen, epoch ms).
 * - `~waiting` → clicks currently waiting for their impression.
 */
export const WATERMARK_KEY = '~wm'
/** Number of clicks waiting for their impression in this partition. */
export const WAITING_COUNT_KEY = '~waiting'

export function pad(n: number, width = 15): string {
  return Math.max(0, Math.floor(n)).toString().padStart(width, '0')
}

/** Separates the publisher from the impression id in a scope: U+001F never occurs in an id (schemas/src/ids.ts). */
export const SCOPE_SEPARATOR = '\u001f'

/**
 * The identity of an impression in the processor's state: its id within the publisher that sent it.
 * Impression ids are chosen by clients and can be read in any page or token, so keyed by the id
 * alone, one publisher's events could mark another's impression seen (its real impression then a
 * `duplicate_impression`) or join clicks to it. The billing job partitions by the same pair
 * (billing/final-join.ts).
 */
export const impressionScope = (publisherId: string, impressionId: string): string => `${publisherId}${SCOPE_SEPARATOR}${impressionId}`

export const impressionKey = (scope: string): string => `i:${scope}`
export const waitingKey = (scope: string): string => `w:${scope}`
export const joinDeadlineKey = (dueMs: number, scope: string): string => `q:${pad(dueMs)}:${scope}`

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
