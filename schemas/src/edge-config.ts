import { z } from 'zod'

/**
 * The tenant config core serves at `GET /v1/internal/edge-config` and the edge pulls (shared
 * contract: core/src/tenants/tenant-store.ts builds it, edge/src/tenants/tenants.ts indexes it).
 *
 * Keys by kind. API keys: `apiKeyHashes` are *server* keys (anything), `publicKeyHashes` *public*
 * keys (page HTML: impressions, and clicks only with a signed click token). Signing keys:
 * `signingKeys` are *token* keys (click and pixel tokens); *request* keys (`X-Adc-Signature`) by
 * scope: `requestSigningKeys` are `server`-scope request keys (kept on the publisher's servers: a
 * signature by one may send anything, as a server key), `appRequestSigningKeys` `app`-scope ones
 * (their secret ships inside apps, so a signature by one is trusted as the public key: clicks only
 * with a signed click token, the observed IP, a client address's share). Key ids are unique across
 * publishers.
 *
 * Compatibility: the fields an older edge knows keep their meaning for what it may accept, and the
 * new ones are fields it ignores, so it refuses public keys and request signatures (fails closed);
 * in the same way an edge from before `appRequestSigningKeys` refuses app-scope signatures
 * (`unknown signing key id`) rather than trusting them as server ones: deploy the edge before the
 * core that serves them.
 * Deploy core first: `campaignIds` is required here, so this edge keeps its last good config (or
 * answers 503) until core serves it.
 */
const keyHash = z.string().regex(/^[0-9a-f]{64}$/)

export const publisherConfigSchema = z.object({
  id: z.string().min(1),
  apiKeyHashes: z.array(keyHash),
  publicKeyHashes: z.array(keyHash).default([]),
  signingKeys: z.record(z.string(), z.string().min(1)),
  requestSigningKeys: z.record(z.string(), z.string().min(1)).default({}),
  appRequestSigningKeys: z.record(z.string(), z.string().min(1)).default({}),
  rateLimit: z.object({ perSecond: z.number().positive(), burst: z.number().positive() }),
  active: z.boolean(),
})

export const edgeConfigSchema = z.object({
  /** Bumped on every tenant change. */
  version: z.number().int(),
  /** Booked campaigns; events for any other are refused (`unknown_campaign`). */
  campaignIds: z.array(z.string().min(1)),
  /**
   * Campaigns booked with some publishers only, by campaign id: another publisher's events for one
   * are refused too (`unknown_campaign`). A campaign not listed is booked with every publisher. An
   * older edge ignores this field and lets such events through, for the processor, which applies
   * the same rule, to keep unbilled.
   */
  campaignPublishers: z.record(z.string(), z.array(z.string().min(1))).default({}),
  publishers: z.array(publisherConfigSchema),
})

export type PublisherConfig = z.output<typeof publisherConfigSchema>
export type EdgeConfig = z.output<typeof edgeConfigSchema>
