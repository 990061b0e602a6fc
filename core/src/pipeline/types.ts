import type { Envelope } from '@adc/schemas'
import type { BurstCounts } from '../state/burst-counters.js'

/** Where a record sits in the log; the processor's unit of replay. */
export interface RecordRef {
  topic: string
  partition: number
  offset: number
}

/** A raw log record as the pipeline receives it. */
export interface RawRecord {
  ref: RecordRef
  /** The record value, byte for byte. */
  payload: string
  /** Log append time, epoch ms. */
  appendedAt: number
}

/** Added by the decode step: the validated v1 envelope. */
export interface Decoded extends RawRecord {
  envelope: Envelope
}

/** Added by the dedupe step: the offset where this event's delivery key was first seen. */
export interface Deduped extends Decoded {
  firstSeenOffset: number
}

/** Added by the join step. */
export interface Joined extends Deduped {
  join: {
    /** `joined`: a click matched its impression; `none`: an impression (nothing to join). */
    status: 'joined' | 'none'
    impressionTs?: number
    /** A click that was already written as `orphan_click` and is now joined: write a signed correction. */
    correction?: boolean
    /**
     * A click written earlier as `join_pending` and resolved now (joined or orphaned): the sinks
     * retract that row (-1) before writing the new verdict, so every accepted click is in the raw
     * table with its current verdict at all times.
     */
    retractPending?: boolean
    /**
     * A click that waited for its impression: its burst counts, taken when it arrived (every click
     * past dedupe counts then, joined or not, as the billing job's reprocess counts it at its log
     * position). IVT scores it with them and counts nothing again.
     */
    bursts?: BurstCounts
  }
}

export interface IvtDecision {
  score: number
  reasons: string[]
  modelVersion: string
  quarantined: boolean
}

/** Added by the IVT step. */
export interface Scored extends Joined {
  ivt: IvtDecision
}

/** An event that reached the sink in any state: what the sink needs to write a row. */
export type SinkEvent = Decoded & Partial<Pick<Scored, 'ivt' | 'join' | 'firstSeenOffset'>>
