import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { edgeConfigSchema } from '@adc/schemas'
import { sameSecret } from '../../secrets.js'
import { MAX_CHANGES_PAGE } from '../../tenants/change-log.js'
import { SigningKeyScopeError, TenantConflictError, TenantReferenceError, hashApiKey, purposeOf, requestScopeOf, scopeOf, type Publisher } from '../../tenants/tenant-store.js'
import { type ResolvedApiDeps, type ApiEnv, bearer, bearerSecurity, idParam, requireAdmin, requireAdminActor } from '../context.js'
import { ApiError, errorResponses } from '../errors.js'

const Pricing = z
  .object({
    model: z.enum(['cpm', 'cpc', 'vcpm']).openapi({ description: '`vcpm` bills viewable impressions only (measured viewable, IAB/MRC).' }),
    priceMicros: z.number().int().min(0).max(1_000_000_000_000).openapi({ description: 'CPM: micros per thousand impressions; CPC: micros per click; vCPM: micros per thousand viewable impressions.' }),
  })
  .openapi('Pricing')

const PublisherIds = z.array(idParam).min(1).max(1000).openapi({
  description: 'The publishers the campaign is booked with; absent: every publisher. Any other publisher\'s events for it are refused at the edge and kept unbilled by the processor (`unknown_campaign`). Set once, when the campaign is booked.',
})

const Campaign = z
  .object({ id: z.string(), advertiserId: z.string(), name: z.string(), pricing: Pricing, publisherIds: PublisherIds.optional(), createdAt: z.number().int() })
  .openapi('Campaign')

const RateLimit = z.object({ perSecond: z.number().int().min(1).max(1_000_000), burst: z.number().int().min(1).max(10_000_000) })

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } }, required: true })

const KeyId = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 characters of A-Z a-z 0-9 _ -')
const Scope = z.enum(['public', 'server']).openapi({
  description: '`public`: may sit in page HTML (tag, beacon); impressions, and clicks only with a signed click token. `server`: Authorization: Bearer from servers; anything.',
})
const Purpose = z.enum(['token', 'request']).openapi({
  description: '`token`: mints click and pixel tokens (stays on the ad server). `request`: signs HTTP requests (X-Adc-Signature); never accepted on a token.',
})
const RequestScope = z.enum(['app', 'server']).openapi({
  description: 'Where a `request` key\'s secret lives (request keys only). `app` (default): inside apps, so anyone who unpacks one can sign: its signatures are trusted as the public key (a click needs its signed clickToken, the edge keeps the IP it observes and never an `ip`/`ipHash`/`s2s` claim, a client address\'s share applies). `server`: on the publisher\'s servers: anything, as a server key.',
})

const createAdvertiserRoute = createRoute({
  method: 'post',
  path: '/v1/admin/advertisers',
  summary: 'Create an advertiser (admin key); answers its API key once',
  security: bearerSecurity,
  request: { body: json(z.object({ id: idParam, name: z.string().min(1).max(200) })) },
  responses: {
    201: {
      description: 'Created',
      content: { 'application/json': { schema: z.object({ id: z.string(), name: z.string(), apiKey: z.string() }) } },
    },
    ...errorResponses(400, 401, 403, 409, 421),
  },
})

const createCampaignRoute = createRoute({
  method: 'post',
  path: '/v1/admin/campaigns',
  summary: 'Create a campaign with its price (admin key)',
  security: bearerSecurity,
  request: { body: json(z.object({ id: idParam, advertiserId: idParam, name: z.string().min(1).max(200).optional(), pricing: Pricing, publisherIds: PublisherIds.optional() })) },
  responses: {
    201: { description: 'Created', content: { 'application/json': { schema: Campaign } } },
    ...errorResponses(400, 401, 403, 409, 422, 421),
  },
})

const createPublisherRoute = createRoute({
  method: 'post',
  path: '/v1/admin/publishers',
  summary: 'Create a publisher (admin key); answers its keys and signing secrets once',
  security: bearerSecurity,
  request: {
    body: json(z.object({
      id: idParam, name: z.string().min(1).max(200), rateLimit: RateLimit.optional(),
      signingKeyId: KeyId.optional().openapi({ description: 'Token signing key id; generated (unique) when absent; 409 if any publisher has it' }),
      requestSigningKeyId: KeyId.optional().openapi({ description: 'Request signing key id; generated (unique) when absent; 409 if any publisher has it' }),
      requestSigningScope: RequestScope.optional().openapi({ description: 'Scope of the request signing key; default app' }),
    })),
  },
  responses: {
    201: {
      description: 'Created; the edge picks it up with its next config pull',
      content: {
        'application/json': {
          schema: z.object({
            id: z.string(),
            name: z.string(),
            apiKey: z.string().openapi({ description: 'Server-scope API key (Authorization: Bearer on the batch routes)' }),
            publicKey: z.string().openapi({ description: "Public-scope API key (the tag's data-key, the beacon's ?k=)" }),
            signingKeyId: z.string().openapi({ description: 'Token signing key id (click and pixel tokens)' }),
            signingSecret: z.string(),
            requestSigningKeyId: z.string().openapi({ description: 'Request signing key id (X-Adc-Key-Id)' }),
            requestSigningSecret: z.string(),
            requestSigningScope: RequestScope,
            rateLimit: RateLimit,
          }),
        },
      },
    },
    ...errorResponses(400, 401, 403, 409, 421),
  },
})

const publisherIdParams = z.object({ id: idParam.openapi({ param: { name: 'id', in: 'path' }, example: 'pub_demo' }) })

const PublisherView = z
  .object({
    id: z.string(),
    name: z.string(),
    apiKeyHashes: z.array(z.string()),
    apiKeys: z.array(z.object({ keyHash: z.string(), scope: Scope })),
    signingKeyIds: z.array(z.string()),
    signingKeys: z.array(z.object({ keyId: z.string(), purpose: Purpose, scope: RequestScope.optional().openapi({ description: 'request keys only' }) })),
    rateLimit: RateLimit,
    active: z.boolean(),
  })
  .openapi('Publisher')

const publisherView = (p: Publisher) => ({
  id: p.id,
  name: p.name,
  apiKeyHashes: p.apiKeyHashes,
  apiKeys: p.apiKeyHashes.map((keyHash) => ({ keyHash, scope: scopeOf(p, keyHash) })),
  signingKeyIds: Object.keys(p.signingKeys),
  signingKeys: Object.keys(p.signingKeys).map((keyId) => {
    const scope = requestScopeOf(p, keyId)
    return { keyId, purpose: purposeOf(p, keyId), ...(scope ? { scope } : {}) }
  }),
  rateLimit: p.rateLimit,
  active: p.active,
})

const updatePublisherRoute = createRoute({
  method: 'patch',
  path: '/v1/admin/publishers/{id}',
  summary: "Change a publisher's name, rate limit or active flag (admin key); reaches the edge with its next config pull",
  security: bearerSecurity,
  request: {
    params: publisherIdParams,
    body: json(z.object({ name: z.string().min(1).max(200).optional(), rateLimit: RateLimit.optional(), active: z.boolean().optional() })),
  },
  responses: {
    200: { description: 'Updated', content: { 'application/json': { schema: PublisherView } } },
    ...errorResponses(400, 401, 403, 404, 421),
  },
})

const addApiKeyRoute = createRoute({
  method: 'post',
  path: '/v1/admin/publishers/{id}/api-keys',
  summary: 'Add an API key to a publisher (rotation: old keys keep working until revoked); answers the key once (admin key)',
  security: bearerSecurity,
  request: {
    params: publisherIdParams,
    body: { content: { 'application/json': { schema: z.object({ scope: Scope.optional().openapi({ description: 'default server' }) }) } }, required: false },
  },
  responses: {
    201: {
      description: 'Added',
      content: { 'application/json': { schema: z.object({ apiKey: z.string(), keyHash: z.string(), scope: Scope, publisher: PublisherView }) } },
    },
    ...errorResponses(400, 401, 403, 404, 421),
  },
})

const revokeApiKeyRoute = createRoute({
  method: 'delete',
  path: '/v1/admin/publishers/{id}/api-keys/{keyHash}',
  summary: 'Revoke a publisher API key by its SHA-256 hash (admin key); a publisher keeps at least one key',
  security: bearerSecurity,
  request: {
    params: z.object({
      id: idParam.openapi({ param: { name: 'id', in: 'path' }, example: 'pub_demo' }),
      keyHash: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 hex digest').openapi({ param: { name: 'keyHash', in: 'path' } }),
    }),
  },
  responses: {
    200: { description: 'Revoked', content: { 'application/json': { schema: PublisherView } } },
    ...errorResponses(400, 401, 403, 404, 409, 421),
  },
})

const addSigningKeyRoute = createRoute({
  method: 'post',
  path: '/v1/admin/publishers/{id}/signing-keys',
  summary: 'Add a signing secret under a new key id, unique across publishers (admin key); answers the secret once',
  security: bearerSecurity,
  request: {
    params: publisherIdParams,
    body: json(z.object({
      keyId: KeyId.optional().openapi({ description: 'generated (unique) when absent; 409 if any publisher has or had it' }),
      purpose: Purpose.optional().openapi({ description: 'default token' }),
      scope: RequestScope.optional().openapi({ description: 'request keys only, default app; 400 `scope_not_applicable` on a token key' }),
    })),
  },
  responses: {
    201: {
      description: 'Added; old keys keep working until revoked',
      content: { 'application/json': { schema: z.object({ keyId: z.string(), purpose: Purpose, scope: RequestScope.optional().openapi({ description: 'request keys only' }), signingSecret: z.string(), publisher: PublisherView }) } },
    },
    ...errorResponses(400, 401, 403, 404, 409, 421),
  },
})

const revokeSigningKeyRoute = createRoute({
  method: 'delete',
  path: '/v1/admin/publishers/{id}/signing-keys/{keyId}',
  summary: 'Revoke a signing key (admin key); the edge refuses it after its next config pull, and its id is never given out again',
  security: bearerSecurity,
  request: {
    params: z.object({
      id: idParam.openapi({ param: { name: 'id', in: 'path' }, example: 'pub_demo' }),
      keyId: KeyId.openapi({ param: { name: 'keyId', in: 'path' } }),
    }),
  },
  responses: {
    200: { description: 'Revoked', content: { 'application/json': { schema: PublisherView } } },
    ...errorResponses(400, 401, 403, 404, 421),
  },
})

const Actor = z
  .object({
    kind: z.enum(['admin', 'system', 'unknown']).openapi({ description: '`admin`: an admin key on this API; `system`: core itself (`demo_seed`, `bootstrap`, `admin_cli`, `upgrade_import`, `core`); `unknown`: a change written before changes named their actor' }),
    id: z.string().optional().openapi({ description: 'The admin principal id, or the system path' }),
    keyFingerprint: z.string().optional().openapi({ description: "Admin actors: the first 16 hex characters of the admin key's SHA-256 (never the key)" }),
  })
  .openapi('ChangeActor')

const Change = z
  .object({
    seq: z.number().int().openapi({ description: 'Position of the change in the tenant topic: the same on every replica; page with `before`' }),
    at: z.number().int().openapi({ description: 'When the change was written, epoch ms (for one written before changes carried it, when the log received it)' }),
    actor: Actor,
    op: z.string().openapi({ description: 'The tenant command (createCampaign, addSigningKey, revokePublisherApiKey, ...)' }),
    target: z.object({ kind: z.string(), id: z.string() }),
    details: z.record(z.string(), z.unknown()).openapi({ description: 'Its other fields, without secrets: keys by fingerprint, signing keys by id' }),
    outcome: z.enum(['applied', 'refused']),
    refusal: z.enum(['conflict', 'unknown_reference', 'failed']).optional(),
  })
  .openapi('TenantChange')

const changesRoute = createRoute({
  method: 'get',
  path: '/v1/admin/changes',
  summary: 'Recent tenant changes, newest first, with who made each and when (admin key); the same on every replica',
  security: bearerSecurity,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(MAX_CHANGES_PAGE).optional().openapi({ description: 'Default 100.' }),
      before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional().openapi({ description: 'Only changes with a `seq` below this one (the last `seq` of the previous page).' }),
    }),
  },
  responses: {
    200: {
      description: 'Changes',
      content: { 'application/json': { schema: z.object({ changes: z.array(Change), next: z.number().int().optional().openapi({ description: 'Pass as `before` for the next page; absent on the last one' }) }) } },
    },
    ...errorResponses(400, 401, 403),
  },
})

const meRoute = createRoute({
  method: 'get',
  path: '/v1/me',
  summary: 'Who this key is',
  security: bearerSecurity,
  responses: {
    200: {
      description: 'The principal',
      content: { 'application/json': { schema: z.object({ kind: z.enum(['admin', 'advertiser', 'publisher']), id: z.string(), name: z.string() }) } },
    },
    ...errorResponses(401),
  },
})

const campaignsRoute = createRoute({
  method: 'get',
  path: '/v1/campaigns',
  summary: "The key's campaigns (all of them for an admin key)",
  security: bearerSecurity,
  responses: {
    200: { description: 'Campaigns', content: { 'application/json': { schema: z.object({ campaigns: z.array(Campaign) }) } } },
    ...errorResponses(401, 403),
  },
})

const edgeConfigRoute = createRoute({
  method: 'get',
  path: '/v1/internal/edge-config',
  summary: 'Tenant config the edge pulls (EDGE_SYNC_KEY or an admin key)',
  security: bearerSecurity,
  responses: {
    200: {
      description: 'Booked campaigns, and publishers with API key hashes by scope, signing keys by purpose and rate limits',
      content: {
        'application/json': {
          // The shared contract itself (schemas/src/edge-config.ts): the document cannot drift from it.
          schema: edgeConfigSchema.meta({ id: 'EdgeConfig' }),
        },
      },
    },
    ...errorResponses(401),
  },
})

/**
 * The validator reads an absent body as `{}`, which a body of only optional fields accepts: these
 * routes declare their body required, so refuse a request without one.
 */
function requireJsonBody(c: Context): void {
  if (!/^application\/([a-z0-9.+-]*\+)?json\b/i.test(c.req.header('content-type') ?? '')) {
    throw new ApiError('invalid_body', 'send a JSON body with Content-Type: application/json')
  }
}

function mapTenantError(err: unknown): never {
  if (err instanceof SigningKeyScopeError) throw new ApiError('scope_not_applicable', err.message)
  if (err instanceof TenantConflictError) throw new ApiError('conflict', err.message)
  if (err instanceof TenantReferenceError) throw new ApiError('unknown_reference', err.message)
  throw err
}

/** Routes under `/v1` that need a principal (the auth middleware runs before them). */
export function registerAdminRoutes(app: OpenAPIHono<ApiEnv>, deps: ResolvedApiDeps): void {
  const { tenants, logger } = deps

  app.openapi(createAdvertiserRoute, async (c) => {
    const actor = requireAdminActor(c)
    const body = c.req.valid('json')
    const { advertiser, apiKey } = await tenants.as(actor).createAdvertiser(body).catch(mapTenantError)
    logger.info({ by: actor, advertiserId: advertiser.id }, 'advertiser created')
    return c.json({ id: advertiser.id, name: advertiser.name, apiKey }, 201)
  })

  app.openapi(createCampaignRoute, async (c) => {
    const actor = requireAdminActor(c)
    const campaign = await tenants.as(actor).createCampaign(c.req.valid('json')).catch(mapTenantError)
    logger.info({ by: actor, campaignId: campaign.id, pricing: campaign.pricing }, 'campaign created')
    return c.json(campaign, 201)
  })

  app.openapi(createPublisherRoute, async (c) => {
    const actor = requireAdminActor(c)
    const body = c.req.valid('json')
    const r = await tenants.as(actor).createPublisher(body).catch(mapTenantError)
    logger.info({ by: actor, publisherId: r.publisher.id }, 'publisher created')
    return c.json(
      {
        id: r.publisher.id, name: r.publisher.name, apiKey: r.apiKey, publicKey: r.publicKey,
        signingKeyId: r.signingKeyId, signingSecret: r.signingSecret,
        requestSigningKeyId: r.requestSigningKeyId, requestSigningSecret: r.requestSigningSecret, requestSigningScope: r.requestSigningScope,
        rateLimit: r.publisher.rateLimit,
      },
      201,
    )
  })

  // A missing publisher is a 404 on these routes: the id is the resource in the path.
  const notFoundPublisher = (err: unknown): never => {
    if (err instanceof TenantReferenceError) throw new ApiError('not_found', err.message)
    return mapTenantError(err)
  }

  app.openapi(updatePublisherRoute, async (c) => {
    const actor = requireAdminActor(c)
    requireJsonBody(c)
    const { id } = c.req.valid('param')
    const p = await tenants.as(actor).updatePublisher(id, c.req.valid('json')).catch(notFoundPublisher)
    logger.info({ by: actor, publisherId: id, rateLimit: p.rateLimit, active: p.active }, 'publisher updated')
    return c.json(publisherView(p), 200)
  })

  app.openapi(addApiKeyRoute, async (c) => {
    const actor = requireAdminActor(c)
    const { id } = c.req.valid('param')
    // The body is optional here (a server key by default), so an empty or non-JSON body is no scope.
    const scope = /^application\/([a-z0-9.+-]*\+)?json\b/i.test(c.req.header('content-type') ?? '') ? c.req.valid('json').scope : undefined
    const r = await tenants.as(actor).addPublisherApiKey(id, scope ? { scope } : {}).catch(notFoundPublisher)
    logger.info({ by: actor, publisherId: id, scope: r.scope }, 'publisher api key added')
    return c.json({ apiKey: r.apiKey, keyHash: hashApiKey(r.apiKey), scope: r.scope, publisher: publisherView(r.publisher) }, 201)
  })

  app.openapi(revokeApiKeyRoute, async (c) => {
    const actor = requireAdminActor(c)
    const { id, keyHash } = c.req.valid('param')
    const p = await tenants.as(actor).revokePublisherApiKey(id, keyHash).catch(notFoundPublisher)
    logger.info({ by: actor, publisherId: id }, 'publisher api key revoked')
    return c.json(publisherView(p), 200)
  })

  app.openapi(addSigningKeyRoute, async (c) => {
    const actor = requireAdminActor(c)
    requireJsonBody(c)
    const { id } = c.req.valid('param')
    const { keyId, purpose, scope } = c.req.valid('json')
    // A scope on a token key: the store's SigningKeyScopeError, 400 scope_not_applicable (mapTenantError).
    const r = await tenants.as(actor).addSigningKey(id, { ...(keyId ? { keyId } : {}), ...(purpose ? { purpose } : {}), ...(scope ? { scope } : {}) }).catch(notFoundPublisher)
    logger.info({ by: actor, publisherId: id, keyId: r.keyId, purpose: r.purpose, scope: r.scope }, 'publisher signing key added')
    return c.json({ keyId: r.keyId, purpose: r.purpose, ...(r.scope ? { scope: r.scope } : {}), signingSecret: r.secret, publisher: publisherView(r.publisher) }, 201)
  })

  app.openapi(revokeSigningKeyRoute, async (c) => {
    const actor = requireAdminActor(c)
    const { id, keyId } = c.req.valid('param')
    const p = await tenants.as(actor).revokeSigningKey(id, keyId).catch(notFoundPublisher)
    logger.info({ by: actor, publisherId: id, keyId }, 'publisher signing key revoked')
    return c.json(publisherView(p), 200)
  })

  app.openapi(changesRoute, (c) => {
    requireAdmin(c)
    const { limit = 100, before } = c.req.valid('query')
    const changes = tenants.listChanges({ limit, ...(before !== undefined ? { before } : {}) })
    const last = changes.at(-1)
    const next = changes.length === limit && last !== undefined && last.seq > 0 ? last.seq : undefined
    return c.json({ changes, ...(next !== undefined ? { next } : {}) }, 200)
  })

  app.openapi(meRoute, (c) => {
    const p = c.get('principal')
    const name =
      p.kind === 'advertiser' ? (tenants.getAdvertiser(p.id)?.name ?? p.id) : p.kind === 'publisher' ? (tenants.getPublisher(p.id)?.name ?? p.id) : p.id
    return c.json({ kind: p.kind, id: p.id, name }, 200)
  })

  app.openapi(campaignsRoute, (c) => {
    const p = c.get('principal')
    if (p.kind === 'publisher') throw new ApiError('forbidden', 'a publisher key has no campaigns')
    const campaigns = tenants.listCampaigns(p.kind === 'advertiser' ? { advertiserId: p.id } : undefined)
    return c.json({ campaigns }, 200)
  })
}

/** The edge's config pull authenticates with EDGE_SYNC_KEY (or an admin key), not a tenant key. */
export function registerEdgeConfigRoute(app: OpenAPIHono, deps: Pick<ResolvedApiDeps, 'tenants' | 'edgeSyncKey'>): void {
  app.openapi(edgeConfigRoute, (c) => {
    const key = bearer(c)
    const ok =
      key !== undefined &&
      ((deps.edgeSyncKey !== undefined && sameSecret(key, deps.edgeSyncKey)) || deps.tenants.principalForKey(key)?.kind === 'admin')
    if (!ok) throw new ApiError('unauthorized', 'send Authorization: Bearer <EDGE_SYNC_KEY>')
    c.header('Cache-Control', 'no-store')
    return c.json(deps.tenants.edgeConfig(), 200)
  })
}
