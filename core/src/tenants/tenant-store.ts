import { createHash, randomBytes } from 'node:crypto'
import type { EdgeConfig as EdgeConfigContract } from '@adc/schemas'
import { open, type RootDatabase } from 'lmdb'
import { applyRecorded, listPrefix, P, type TenantCommand } from './tenant-state.js'
import { listChanges, SYSTEM_ACTORS, type TenantActor, type TenantChange } from './change-log.js'

/**
 * Durable tenants: advertisers, campaigns with their price, publishers with API keys (stored as
 * SHA-256 hashes only), signing secrets by key id and rate limits, and admin keys. Read from an LMDB
 * view, so whatever the admin API created survives a restart and reaches the edge through
 * `GET /v1/internal/edge-config` without a redeploy. Every write is a command of the tenant state
 * machine (tenant-state.ts): applied at once here, or through the shared tenant topic when several
 * core replicas run (shared-tenant-store.ts).
 */

export type PricingModel = 'cpm' | 'cpc' | 'vcpm'

export interface Pricing {
  model: PricingModel
  /** CPM: micros per thousand impressions; CPC: micros per click; vCPM: micros per thousand viewable impressions. */
  priceMicros: number
}

export interface Advertiser {
  id: string
  name: string
  createdAt: number
}

export interface Campaign {
  id: string
  advertiserId: string
  name: string
  pricing: Pricing
  /**
   * The publishers the campaign is booked with; absent: every publisher. Events of any other
   * publisher for it are not booked (`unknown_campaign`: the edge refuses them, the processor keeps
   * them unbilled). Set when the campaign is booked and never changed, as campaigns are never
   * deleted, so a verdict on it is the same on every replay.
   */
  publisherIds?: string[]
  createdAt: number
}

/** Whether a publisher's events for a campaign bill: it is booked, and with that publisher when its booking names publishers. */
export const bookedWith = (campaign: Campaign | undefined, publisherId: string): boolean =>
  campaign !== undefined && (campaign.publisherIds === undefined || campaign.publisherIds.includes(publisherId))

export interface RateLimit {
  perSecond: number
  burst: number
}

/**
 * What a publisher API key may do. `public` keys sit in page HTML (the tag's `data-key`, the
 * beacon's `?k=`): they send impressions, and clicks only with a valid signed click token.
 * `server` keys stay on the publisher's servers (`Authorization: Bearer`) and may send anything.
 */
export type ApiKeyScope = 'public' | 'server'

/**
 * What a signing secret may sign. `token` secrets mint click and pixel tokens and stay on the ad
 * server; `request` secrets sign HTTP requests (apps, servers) and can never mint a token.
 */
export type SigningKeyPurpose = 'token' | 'request'

/**
 * Where a `request` signing secret lives. `app`: inside apps (every copy holds it, so anyone who
 * unpacks one can sign): its signatures are trusted as the public key (clicks only with their signed
 * click token, the IP the edge observes, a client address's share). `server`: on the publisher's
 * servers: its signatures may send anything, as a server key. Token keys have no scope.
 */
export type RequestKeyScope = 'app' | 'server'

export interface Publisher {
  id: string
  name: string
  /** Every API key of the publisher, any scope (SHA-256 hashes). */
  apiKeyHashes: string[]
  /** Scope per key hash; a hash not listed is a `server` key (publishers stored before scopes). */
  apiKeyScopes?: Record<string, ApiKeyScope>
  /** Signing secrets by key id, any purpose; secrets rotate by adding a key id, then revoking the old. */
  signingKeys: Record<string, string>
  /** Purpose per key id; a key id not listed is a `token` key (publishers stored before purposes). */
  signingKeyPurposes?: Record<string, SigningKeyPurpose>
  /**
   * Scope per `request` key id; a request key not listed is an `app` key (least trust: request keys
   * stored before scopes, whose secrets the docs shipped inside apps).
   */
  signingKeyScopes?: Record<string, RequestKeyScope>
  rateLimit: RateLimit
  active: boolean
  createdAt: number
}

export type PrincipalKind = 'admin' | 'advertiser' | 'publisher'

export interface Principal {
  kind: PrincipalKind
  id: string
}

/**
 * The tenant config the edge pulls: the shared contract `edgeConfigSchema` of @adc/schemas
 * (`GET /v1/internal/edge-config`, indexed by edge/src/tenants/tenants.ts).
 */
export type EdgeConfig = EdgeConfigContract

export class TenantConflictError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'TenantConflictError'
  }
}

export class TenantReferenceError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'TenantReferenceError'
  }
}

export const DEFAULT_RATE_LIMIT: RateLimit = { perSecond: 500, burst: 1000 }

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

export function generateKey(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`
}

/** Prefix of generated API keys by scope; server keys keep the original `pk_`. */
export const API_KEY_PREFIX: Record<ApiKeyScope, string> = { server: 'pk', public: 'pkpub' }

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** A globally unique signing key id: `k_` and 80 random bits in lower-case base32 (16 characters). */
export function generateKeyId(): string {
  let out = 'k_'
  for (const b of randomBytes(16)) out += BASE32[b & 31]
  return out
}

export const scopeOf = (p: Publisher, hash: string): ApiKeyScope => p.apiKeyScopes?.[hash] ?? 'server'
export const purposeOf = (p: Publisher, keyId: string): SigningKeyPurpose => p.signingKeyPurposes?.[keyId] ?? 'token'
/** The scope of a request key (`app` unless stored as `server`); undefined for a token key. */
export const requestScopeOf = (p: Publisher, keyId: string): RequestKeyScope | undefined =>
  purposeOf(p, keyId) === 'request' ? (p.signingKeyScopes?.[keyId] ?? 'app') : undefined

/** A scope given for a token key: only request keys have one. */
export class SigningKeyScopeError extends Error {
  constructor(message = 'a scope (app, server) applies to request signing keys only; a token key has none') {
    super(message)
    this.name = 'SigningKeyScopeError'
  }
}

/** The scope a signing key of `purpose` is stored with: a request key's (`app` unless given), none for a token key (which may not be given one). */
function keyScope(purpose: SigningKeyPurpose, scope: RequestKeyScope | undefined): RequestKeyScope | undefined {
  if (purpose === 'token' && scope !== undefined) throw new SigningKeyScopeError()
  return purpose === 'request' ? (scope ?? 'app') : undefined
}

export interface TenantStore {
  getAdvertiser(id: string): Advertiser | undefined
  listAdvertisers(): Advertiser[]
  /** Creates the advertiser and returns its new API key (shown once; only its hash is kept). */
  createAdvertiser(input: { id: string; name: string; apiKey?: string }): Promise<{ advertiser: Advertiser; apiKey: string }>
  getCampaign(id: string): Campaign | undefined
  listCampaigns(filter?: { advertiserId?: string }): Campaign[]
  createCampaign(input: { id: string; advertiserId: string; name?: string; pricing: Pricing; publisherIds?: string[] }): Promise<Campaign>
  getPublisher(id: string): Publisher | undefined
  listPublishers(): Publisher[]
  /**
   * Creates a publisher with one key of each kind: a server API key, a public API key, a token
   * signing key and a request signing key (generated unless given). Key ids are unique across all
   * publishers: a given one that exists anywhere is a conflict.
   */
  createPublisher(input: CreatePublisherInput): Promise<CreatedPublisher>
  /** Changes a publisher's rate limit or active flag; the edge picks it up with its next config pull. */
  updatePublisher(id: string, patch: { rateLimit?: RateLimit; active?: boolean; name?: string }): Promise<Publisher>
  /** Adds an API key (rotation: old keys keep working until revoked). Returns the new key once. */
  addPublisherApiKey(id: string, input?: { apiKey?: string; scope?: ApiKeyScope }): Promise<{ publisher: Publisher; apiKey: string; scope: ApiKeyScope }>
  /** Removes an API key (any scope) by its SHA-256 hash; a publisher keeps at least one key. */
  revokePublisherApiKey(id: string, keyHash: string): Promise<Publisher>
  /**
   * Adds a signing secret under a new, globally unique key id (tokens and signatures name the key id
   * they were signed with); `purpose` defaults to `token`; a request key's `scope` defaults to `app`
   * (a scope on a token key is refused: `SigningKeyScopeError`). Old keys keep working until revoked.
   */
  addSigningKey(id: string, input?: { keyId?: string; secret?: string; purpose?: SigningKeyPurpose; scope?: RequestKeyScope }): Promise<{ publisher: Publisher; keyId: string; secret: string; purpose: SigningKeyPurpose; scope?: RequestKeyScope }>
  /** Removes a signing key; its id stays taken, so nothing signed with it verifies again. */
  revokeSigningKey(id: string, keyId: string): Promise<Publisher>
  /** Registers an admin key (idempotent for the same key). */
  addAdminKey(id: string, key: string): Promise<void>
  /** Resolves a bearer key by its SHA-256 hash. */
  principalForKey(key: string): Principal | undefined
  /** Hashes of every key that resolves to this principal. */
  keyHashesOf(principal: Principal): string[]
  /**
   * Adds a key for any principal (idempotent for the same principal); publishers list it in their
   * edge config with `scope` (@default server).
   */
  addKey(principal: Principal, key: string, scope?: ApiKeyScope): Promise<void>
  /** Removes a key by its hash, whoever holds it (a publisher may be left with none: it then cannot send). */
  removeKey(keyHash: string): Promise<void>
  /**
   * Sets (adds or replaces) the signing secret under a key id, for `purpose` (@default token); a
   * request key with `scope` (@default app).
   */
  setSigningKey(publisherId: string, keyId: string, secret: string, purpose?: SigningKeyPurpose, scope?: RequestKeyScope): Promise<void>
  /**
   * The same store, whose writes name `actor` as who made them (`by` on each command, with `at`).
   * The API writes as the admin key of the request; core's own paths as their SYSTEM_ACTORS.
   */
  as(actor: TenantActor): TenantStore
  /** The actor this store's writes name (@default SYSTEM_ACTORS.core). */
  readonly actor: TenantActor
  /**
   * Tenant changes, newest first (change-log.ts): who made each, when, what it acted on, and whether
   * it applied; at most `limit`, those before position `before` when given. No secret is listed.
   */
  listChanges(query: { limit: number; before?: number }): TenantChange[]
  /** Whether any admin key exists (a production store without one needs the bootstrap). */
  hasAdminKey(): boolean
  /**
   * Monotonic number bumped on every change, so the edge can tell configs apart. Every replica of
   * a fleet applies the same changes in the same order, so a version names the same tenants on each.
   */
  configVersion(): number
  /**
   * Applies every tenant change written before the call (the fleet's shared topic up to its end as
   * read now) and answers true, or false when that took longer than `timeoutMs`. A store of one
   * process applies its writes at once: always true.
   */
  catchUp(timeoutMs: number): Promise<boolean>
  edgeConfig(): EdgeConfig
  close(): Promise<void>
}

export interface CreatePublisherInput {
  id: string
  name: string
  /** Server-scope API key. */
  apiKey?: string
  /** Public-scope API key. */
  publicKey?: string
  /** Token signing key. */
  signingKeyId?: string
  signingSecret?: string
  requestSigningKeyId?: string
  requestSigningSecret?: string
  /** Scope of the request signing key. @default app */
  requestSigningScope?: RequestKeyScope
  rateLimit?: RateLimit
}

export interface CreatedPublisher {
  publisher: Publisher
  apiKey: string
  publicKey: string
  signingKeyId: string
  signingSecret: string
  requestSigningKeyId: string
  requestSigningSecret: string
  requestSigningScope: RequestKeyScope
}

/**
 * How a store's writes reach its view: applied at once (one process), or appended to the shared
 * tenant topic and applied when read back (shared-tenant-store.ts). Resolves to what
 * `applyTenantCommand` returned, or rejects with its refusal.
 */
export type SubmitTenantCommand = (cmd: TenantCommand) => Promise<unknown>

/**
 * A tenant store of one process: each write is applied to the LMDB view in its own transaction,
 * with its change log entry (a refused one is logged as refused, then rethrown).
 */
export function openTenantStore(options: { dir: string }): TenantStore {
  const db: RootDatabase = open({ path: options.dir, compression: false })
  return createTenantStore(db, async (cmd) => {
    const seq = (db.get(P.changeSeq) as number | undefined) ?? 0
    const applied = applyRecorded(db, cmd, { seq, appendedAt: Date.now(), advance: () => db.put(P.changeSeq, seq + 1) })
    if ('refusal' in applied) throw applied.refusal
    return applied.result
  })
}

/**
 * The `TenantStore` over an LMDB view: reads are synchronous lookups in the view; writes choose
 * their keys, secrets and timestamps here, then go through `submit` as commands naming `actor` and
 * the time they were written.
 */
export function createTenantStore(
  db: RootDatabase,
  submitCommand: SubmitTenantCommand,
  onClose: () => Promise<void> = () => db.close(),
  catchUp: (timeoutMs: number) => Promise<boolean> = async () => true,
  actor: TenantActor = SYSTEM_ACTORS.core,
): TenantStore {
  const submit: SubmitTenantCommand = (cmd) => submitCommand({ ...cmd, by: actor, at: cmd.at ?? Date.now() })
  const list = <T>(prefix: string): T[] => listPrefix<T>(db, prefix)
  const newSecret = (): string => randomBytes(32).toString('base64url')

  async function createPublisher(input: CreatePublisherInput): Promise<CreatedPublisher> {
    const apiKey = input.apiKey ?? generateKey(API_KEY_PREFIX.server)
    const publicKey = input.publicKey ?? generateKey(API_KEY_PREFIX.public)
    const signingKeyId = input.signingKeyId ?? generateKeyId()
    const signingSecret = input.signingSecret ?? newSecret()
    const requestSigningKeyId = input.requestSigningKeyId ?? generateKeyId()
    const requestSigningSecret = input.requestSigningSecret ?? newSecret()
    const requestSigningScope = input.requestSigningScope ?? 'app'
    const hash = hashApiKey(apiKey)
    const publicHash = hashApiKey(publicKey)
    if (hash === publicHash) throw new TenantConflictError('the public and the server API key must differ')
    if (signingKeyId === requestSigningKeyId) throw new TenantConflictError('the token and the request signing key ids must differ')
    const publisher = (await submit({
      op: 'createPublisher', id: input.id, name: input.name, hash, publicHash,
      signingKeyId, signingSecret, requestSigningKeyId, requestSigningSecret, requestSigningScope,
      rateLimit: input.rateLimit ?? DEFAULT_RATE_LIMIT, at: Date.now(),
    })) as Publisher
    return { publisher, apiKey, publicKey, signingKeyId, signingSecret, requestSigningKeyId, requestSigningSecret, requestSigningScope }
  }

  function keyHashesOf(principal: Principal): string[] {
    const out: string[] = []
    for (const { key, value } of db.getRange({ start: P.key, end: `${P.key}\uffff` })) {
      const v = value as Principal
      if (v.kind === principal.kind && v.id === principal.id) out.push(String(key).slice(P.key.length))
    }
    return out
  }

  const version = (): number => (db.get(P.version) as number | undefined) ?? 0

  return {
    actor,
    as: (other) => createTenantStore(db, submitCommand, onClose, catchUp, other),
    listChanges: (query) => listChanges(db, query),
    keyHashesOf,
    addKey: async (principal, key, scope = 'server') => {
      await submit({ op: 'addKey', principal: { kind: principal.kind, id: principal.id }, hash: hashApiKey(key), scope })
    },
    removeKey: async (keyHash) => {
      await submit({ op: 'removeKey', hash: keyHash })
    },
    setSigningKey: async (publisherId, keyId, secret, purpose = 'token', scope) => {
      const s = keyScope(purpose, scope)
      await submit({ op: 'setSigningKey', publisherId, keyId, secret, purpose, ...(s ? { scope: s } : {}) })
    },
    hasAdminKey: () => list<Principal>(P.key).some((p) => p.kind === 'admin'),
    getAdvertiser: (id) => db.get(P.advertiser + id) as Advertiser | undefined,
    listAdvertisers: () => list<Advertiser>(P.advertiser),
    createAdvertiser: async (input) => {
      const apiKey = input.apiKey ?? generateKey('ak')
      const advertiser = (await submit({ op: 'createAdvertiser', id: input.id, name: input.name, keyHash: hashApiKey(apiKey), at: Date.now() })) as Advertiser
      return { advertiser, apiKey }
    },
    getCampaign: (id) => db.get(P.campaign + id) as Campaign | undefined,
    listCampaigns: (filter) =>
      list<Campaign>(P.campaign).filter((c) => filter?.advertiserId === undefined || c.advertiserId === filter.advertiserId),
    createCampaign: async (input) =>
      (await submit({
        op: 'createCampaign', id: input.id, advertiserId: input.advertiserId, name: input.name ?? input.id,
        pricing: { model: input.pricing.model, priceMicros: input.pricing.priceMicros },
        ...(input.publisherIds === undefined ? {} : { publisherIds: [...new Set(input.publisherIds)].sort() }), at: Date.now(),
      })) as Campaign,
    getPublisher: (id) => db.get(P.publisher + id) as Publisher | undefined,
    listPublishers: () => list<Publisher>(P.publisher),
    createPublisher,
    updatePublisher: async (id, patch) => (await submit({ op: 'updatePublisher', id, patch })) as Publisher,
    addPublisherApiKey: async (id, input = {}) => {
      const scope = input.scope ?? 'server'
      const apiKey = input.apiKey ?? generateKey(API_KEY_PREFIX[scope])
      const publisher = (await submit({ op: 'addPublisherApiKey', id, hash: hashApiKey(apiKey), scope })) as Publisher
      return { publisher, apiKey, scope }
    },
    revokePublisherApiKey: async (id, keyHash) => (await submit({ op: 'revokePublisherApiKey', id, keyHash })) as Publisher,
    addSigningKey: async (id, input = {}) => {
      const secret = input.secret ?? newSecret()
      const keyId = input.keyId ?? generateKeyId()
      const purpose = input.purpose ?? 'token'
      const scope = keyScope(purpose, input.scope)
      const publisher = (await submit({ op: 'addSigningKey', id, keyId, secret, purpose, ...(scope ? { scope } : {}) })) as Publisher
      return { publisher, keyId, secret, purpose, ...(scope ? { scope } : {}) }
    },
    revokeSigningKey: async (id, keyId) => (await submit({ op: 'revokeSigningKey', id, keyId })) as Publisher,
    addAdminKey: async (id, key) => {
      await submit({ op: 'addAdminKey', id, hash: hashApiKey(key) })
    },
    principalForKey: (key) => db.get(P.key + hashApiKey(key)) as Principal | undefined,
    configVersion: version,
    catchUp,
    edgeConfig: () => ({
      version: version(),
      // Campaigns are never deleted, so this set only grows (a verdict on it is stable on replay).
      campaignIds: list<Campaign>(P.campaign).map((c) => c.id),
      // Set when booked, never changed: the same verdict on every replay too.
      campaignPublishers: Object.fromEntries(list<Campaign>(P.campaign).filter((c) => c.publisherIds !== undefined).map((c) => [c.id, c.publisherIds!])),
      publishers: list<Publisher>(P.publisher).map((p) => {
        const keysOf = (purpose: SigningKeyPurpose, scope?: RequestKeyScope) =>
          Object.fromEntries(Object.entries(p.signingKeys).filter(([keyId]) => purposeOf(p, keyId) === purpose && requestScopeOf(p, keyId) === scope))
        return {
          id: p.id,
          apiKeyHashes: p.apiKeyHashes.filter((h) => scopeOf(p, h) === 'server'),
          publicKeyHashes: p.apiKeyHashes.filter((h) => scopeOf(p, h) === 'public'),
          signingKeys: keysOf('token'),
          // By scope: an edge that knows no app keys refuses them, never trusts them as server ones.
          requestSigningKeys: keysOf('request', 'server'),
          appRequestSigningKeys: keysOf('request', 'app'),
          rateLimit: p.rateLimit,
          active: p.active,
        }
      }),
    }),
    close: onClose,
  }
}

export interface DemoSeed {
  /** Server-scope publisher key (batch routes, `Authorization: Bearer`). */
  publisherKey: string
  advertiserKey: string
  /** Token signing secret, key id `demo`. */
  signingSecret: string
  adminKey: string
  /** Public-scope publisher key (the tag's `data-key`, the beacon's `?k=`); generated when absent. */
  publicKey?: string
  /**
   * Request signing secret, key id `demo_request`, `app` scope (what the README's app examples
   * sign with: clicks carry their click token); generated when absent.
   */
  requestSigningSecret?: string
}

export const DEMO_IDS = {
  publisher: 'pub_demo',
  advertiser: 'adv_demo',
  signingKeyId: 'demo',
  requestSigningKeyId: 'demo_request',
  campaignCpm: 'cmp_demo_cpm',
  campaignCpc: 'cmp_demo_cpc',
  admin: 'admin_demo',
} as const

/** A create another replica won meanwhile (two replicas seeding at once) is as good as our own. */
async function unlessCreatedMeanwhile(create: Promise<unknown>): Promise<void> {
  try {
    await create
  } catch (err) {
    if (!(err instanceof TenantConflictError)) throw err
  }
}

/**
 * Seeds the demo tenant of the design (publisher `pub_demo`, advertiser `adv_demo`, campaigns
 * `cmp_demo_cpm` at 2 USD CPM and `cmp_demo_cpc` at 0.50 USD CPC) and makes its keys exactly the
 * configured ones: a key of the demo principals that is not in `seed` is revoked, and the `demo`
 * signing secret is replaced. Core's main calls it on every development start, so changing a
 * DEMO_* variable and restarting retires the old key. Restarting with the same keys changes nothing.
 * Its changes name `SYSTEM_ACTORS.demoSeed` as their actor.
 */
export async function seedDemoTenant(seeded: TenantStore, seed: DemoSeed): Promise<void> {
  const store = seeded.as(SYSTEM_ACTORS.demoSeed)
  if (!store.getAdvertiser(DEMO_IDS.advertiser)) {
    await unlessCreatedMeanwhile(store.createAdvertiser({ id: DEMO_IDS.advertiser, name: 'Demo advertiser', apiKey: seed.advertiserKey }))
  }
  if (!store.getPublisher(DEMO_IDS.publisher)) {
    await unlessCreatedMeanwhile(store.createPublisher({
      id: DEMO_IDS.publisher,
      name: 'Demo publisher',
      apiKey: seed.publisherKey,
      signingKeyId: DEMO_IDS.signingKeyId,
      signingSecret: seed.signingSecret,
      ...(seed.publicKey !== undefined ? { publicKey: seed.publicKey } : {}),
      ...(seed.requestSigningSecret !== undefined
        ? { requestSigningKeyId: DEMO_IDS.requestSigningKeyId, requestSigningSecret: seed.requestSigningSecret }
        : {}),
      rateLimit: DEFAULT_RATE_LIMIT,
    }))
  }
  // The demo principals' keys become exactly the configured ones: add first (a publisher is never
  // left without a key), then revoke the rest. A public key that was not configured (generated at
  // creation) is kept.
  const publisher: Principal = { kind: 'publisher', id: DEMO_IDS.publisher }
  const wanted: Array<[Principal, string, ApiKeyScope | undefined]> = [
    [{ kind: 'admin', id: DEMO_IDS.admin }, seed.adminKey, undefined],
    [{ kind: 'advertiser', id: DEMO_IDS.advertiser }, seed.advertiserKey, undefined],
    [publisher, seed.publisherKey, 'server'],
    ...(seed.publicKey !== undefined ? [[publisher, seed.publicKey, 'public'] as [Principal, string, ApiKeyScope]] : []),
  ]
  for (const [principal, key, scope] of wanted) await store.addKey(principal, key, scope)
  const keep = new Set(wanted.map(([, key]) => hashApiKey(key)))
  const demoPublisher = store.getPublisher(DEMO_IDS.publisher)
  for (const principal of [wanted[0]![0], wanted[1]![0], publisher]) {
    for (const hash of store.keyHashesOf(principal)) {
      const unconfiguredPublic = principal.kind === 'publisher' && seed.publicKey === undefined && demoPublisher !== undefined && scopeOf(demoPublisher, hash) === 'public'
      if (!keep.has(hash) && !unconfiguredPublic) await store.removeKey(hash)
    }
  }
  await store.setSigningKey(DEMO_IDS.publisher, DEMO_IDS.signingKeyId, seed.signingSecret, 'token')
  if (seed.requestSigningSecret !== undefined) {
    await store.setSigningKey(DEMO_IDS.publisher, DEMO_IDS.requestSigningKeyId, seed.requestSigningSecret, 'request')
  }
  if (!store.getCampaign(DEMO_IDS.campaignCpm)) {
    await unlessCreatedMeanwhile(store.createCampaign({
      id: DEMO_IDS.campaignCpm,
      advertiserId: DEMO_IDS.advertiser,
      name: 'Demo CPM campaign',
      pricing: { model: 'cpm', priceMicros: 2_000_000 },
    }))
  }
  if (!store.getCampaign(DEMO_IDS.campaignCpc)) {
    await unlessCreatedMeanwhile(store.createCampaign({
      id: DEMO_IDS.campaignCpc,
      advertiserId: DEMO_IDS.advertiser,
      name: 'Demo CPC campaign',
      pricing: { model: 'cpc', priceMicros: 500_000 },
    }))
  }
}

/** The development defaults of the shared contract (refused outside development by the config). */
export const DEMO_DEFAULTS: Required<DemoSeed> = {
  publisherKey: 'pk_demo_publisher_dev',
  advertiserKey: 'ak_demo_advertiser_dev',
  signingSecret: 'demo-signing-secret-dev',
  adminKey: 'admin_demo_dev',
  publicKey: 'pkpub_demo_publisher_dev',
  requestSigningSecret: 'demo-request-secret-dev',
}
