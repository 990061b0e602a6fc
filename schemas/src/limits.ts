/**
 * The edge's size limits, apart from the zod schemas so clients can import them without zod.
 * Batch routes: at most 500 events and 1 MiB per body; the beacon route: 64 KiB (browsers cap
 * sendBeacon bodies there).
 */
export const MAX_BATCH_EVENTS = 500
export const MAX_BATCH_BYTES = 1024 * 1024
export const MAX_BEACON_BYTES = 64 * 1024
