import { z } from 'zod'
import { clickEventSchema, impressionEventSchema } from './events.js'
import { text } from './text.js'

/** How the edge's dedupe shard judged the event before forwarding it. */
export const dedupeOutcomeSchema = z.enum(['new', 'skipped'])

/** Facts the edge observed on the request. */
export const edgeFactsSchema = z.object({
  colo: text().max(16).optional(),
  country: text().max(2).optional(),
  asn: z.number().int().nonnegative().optional(),
  dedupe: dedupeOutcomeSchema,
  /** How the event arrived. */
  source: z.enum(['batch', 'beacon', 'pixel', 'redirect', 's2s']),
  /** Set when the request was HEAD, prefetch/prerender or a link scanner (click redirect). */
  prefetch: z.boolean().optional(),
  /**
   * The version of the tenant config (`EdgeConfig.version`) the edge checked the event against:
   * its campaign was booked there. A processor whose tenant view has not applied that version yet
   * catches up before it calls the campaign unbooked (core/src/processor/tenant-sync.ts). Absent in
   * envelopes of edges from before it.
   */
  configVersion: z.number().int().nonnegative().optional(),
})

/**
 * Client facts kept for IVT and reprocessing. Raw IPs never leave the edge: only the truncated
 * prefix (/24 for IPv4, /48 for IPv6) and a salted hash (daily rotating salt; 32 hex digits), or the
 * sender's own SHA-256 (`ipHash` of a batch event, 64 hex digits) when it hashed on its side.
 * Without consent (`consent: false`) only the agent and the prefix, what IVT judges by: no hash that
 * tells users apart.
 */
export const clientFactsSchema = z.object({
  ua: text().max(1024).optional(),
  ipPrefix: text().max(64).optional(),
  ipHash: text().max(64).optional(),
  /** A sender-side hex SHA-256 of the agent (`uaHash` of a batch event), kept as given; opaque. */
  uaHash: text().max(64).optional(),
})

const base = {
  v: z.literal(1),
  /** Delivery idempotency key (schemas/keys.ts). */
  key: z.string().regex(/^[0-9a-f]{32}$/),
  /** Edge clock, epoch ms; bounded like event times (8.64e15 is the last instant a Date holds). */
  receivedAt: z.number().int().nonnegative().max(8.64e15),
  edge: edgeFactsSchema,
  client: clientFactsSchema,
}

/** The versioned record written to the log (value of a record keyed by impressionId). */
export const envelopeSchema = z.discriminatedUnion('type', [
  z.object({ ...base, type: z.literal('impression'), event: impressionEventSchema.omit({ ua: true, ip: true, uaHash: true, ipHash: true }) }),
  z.object({ ...base, type: z.literal('click'), event: clickEventSchema.omit({ ua: true, ip: true, uaHash: true, ipHash: true, clickToken: true }) }),
])

export type Envelope = z.infer<typeof envelopeSchema>
export type EnvelopeInput = z.input<typeof envelopeSchema>
export const ENVELOPE_VERSION = 1
