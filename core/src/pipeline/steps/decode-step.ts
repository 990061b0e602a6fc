import { envelopeSchema, ENVELOPE_VERSION, type Envelope } from '@adc/schemas'
import { badRow, ok } from '../result.js'
import { fastEnvelope } from './envelope-fast.js'
import { scanEnvelope } from './envelope-scan.js'
import type { Step } from '../step.js'
import type { Decoded, RawRecord } from '../types.js'
import { MAX_EDGE_CLOCK_AHEAD_MS } from '../../rules/rules.js'

/**
 * Parses a log record into a v1 envelope. A record that is not JSON, has another version or fails
 * the schema becomes a bad row (`bad_envelope` / `unknown_version`) with the original payload and the
 * zod issues: never dropped, never a crash, and the records beside it carry on. So does an envelope
 * received, it says, more than `MAX_EDGE_CLOCK_AHEAD_MS` after the log received it: no edge's clock
 * gives that, and its time would move the partition's watermark (and every state expiry) with it.
 */
export function createDecodeStep(): Step<RawRecord, Decoded> {
  return function decodeStep(input) {
    // The plain form the edge writes, read straight from the text (envelope-scan.ts); anything else
    // is JSON.parse's and the schema's to judge.
    const scanned = scanEnvelope(input.payload)
    if (scanned) return decoded(scanned, input)
    let json: unknown
    try {
      json = JSON.parse(input.payload)
    } catch (err) {
      return badRow('bad_envelope', `not JSON: ${(err as Error).message}`, input.payload)
    }
    if (typeof json === 'object' && json !== null && 'v' in json && (json as { v: unknown }).v !== ENVELOPE_VERSION) {
      return badRow('unknown_version', `envelope version ${JSON.stringify((json as { v: unknown }).v)} is not ${ENVELOPE_VERSION}`, input.payload)
    }
    // The common case, checked by hand exactly as the schema would; anything else goes to zod.
    const fast = fastEnvelope(json)
    if (fast) return decoded(fast, input)
    const parsed = envelopeSchema.safeParse(json)
    if (!parsed.success) {
      const details = parsed.error.issues.slice(0, 10).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
      return badRow('bad_envelope', details, input.payload)
    }
    return decoded(parsed.data, input)
  }
}

/** The record with its valid envelope, unless the envelope was received later than any edge clock gives. */
function decoded(envelope: Envelope, input: RawRecord) {
  if (envelope.receivedAt > input.appendedAt + MAX_EDGE_CLOCK_AHEAD_MS) return receivedTooLate(envelope.receivedAt, input)
  // Annotate the record in place (no copy, no temporary object per event).
  const out = input as Decoded
  out.envelope = envelope
  return ok(out)
}

function receivedTooLate(receivedAt: number, input: RawRecord) {
  return badRow('bad_envelope', `receivedAt: ${receivedAt} is more than ${MAX_EDGE_CLOCK_AHEAD_MS / 60_000} min after the log received the record (${input.appendedAt}); no edge clock gives it`, input.payload)
}
