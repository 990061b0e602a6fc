import type { ClickEvent, EventType, ImpressionEvent, ReasonCode } from '@adc/schemas'

/** Fields the client fills in when the app leaves them out. */
type Filled = 'eventId' | 'ts' | 'publisherId'

/** What the app passes to `client.impression()`: the event without the fields the client fills in. */
export type ImpressionFields = Omit<ImpressionEvent, Filled | 'ts'> & Partial<Pick<ImpressionEvent, 'eventId' | 'publisherId'>> & { ts?: number | string }

/**
 * What the app passes to `client.click()`. `clickToken` is the signed click token the ad server
 * minted (`@adc/sdk/server`); public-key clients send it so the edge can tell a billable click from
 * a forged one. Apps that sign requests or hold a server key may leave it out.
 */
export type ClickFields = Omit<ClickEvent, Filled | 'ts'> & Partial<Pick<ClickEvent, 'eventId' | 'publisherId'>> & { ts?: number | string; clickToken?: string }

/** One event as it waits in the queue: its wire JSON is fixed at creation, so every retry is byte-identical. */
export interface QueuedEvent {
  type: EventType
  eventId: string
  /** The event's JSON as sent on the batch routes. */
  json: string
  /** UTF-8 length of `json`. */
  bytes: number
  /**
   * The device clock (ms) the client stamped `ts` from; absent when the app gave `ts` itself (the
   * client never changes an app's `ts`).
   */
  deviceTs?: number
  /** The offset to the edge's clock (clock.ts) added to `deviceTs` to make `ts`. */
  tsOffset?: number
  /**
   * true while `tsOffset` is a guess (no offset was confirmed when the event was made): the first
   * confirmed offset replaces it before the event is sent.
   */
  tsGuess?: boolean
}

/** Why the client gave up on an event: a code from the reason registry (the edge's or the SDK's own). */
export interface Dropped {
  eventId: string
  type: EventType
  code: ReasonCode | string
  message?: string
  /** HTTP status of the answer that refused it (absent for drops decided in the client). */
  status?: number
}
