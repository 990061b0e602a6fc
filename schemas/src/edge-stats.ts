import { z } from 'zod'

/**
 * What the edge reports per publisher and minute on the `edge-stats` topic (shared contract: the
 * edge's stats batcher writes it, core's edge-stats worker reads it). A report the edge sent twice
 * (a spool retry) carries the same `batchId`, by which core drops the second.
 */
export const edgeStatsSchema = z.object({
  v: z.literal(1),
  kind: z.literal('edge_stats'),
  batchId: z.string().min(1).max(64),
  publisherId: z.string().min(1).max(128),
  minute: z.number().int().nonnegative(),
  received: z.number().int().nonnegative(),
  accepted: z.number().int().nonnegative(),
  duplicate: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  rejectedByReason: z.record(z.string(), z.number().int().nonnegative()).default({}),
})

export type EdgeStatsRecord = z.input<typeof edgeStatsSchema>
