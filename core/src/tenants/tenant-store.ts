import { createHash, randomBytes } from 'node:crypto'
import type { EdgeConfig as EdgeConfigContract } from '@adc/schemas'
import { open, type RootDatabase } from 'lmdb'

/**
 * Durable tenants: advertisers, campaigns with their price, publishers with API keys (stored as
 * SHA-256 hashes only), signing secrets by key id and rate limits, and admin keys. Backed by LMDB,
 * so whatever the admin API created survives a restart and reaches the edge through
 * `GET /v1/internal/edge-config` without a redeploy.
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
  createdAt: number
}

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
 * (`GET /v1/internal/edge-config`, indexed by edge/src/lib/tenants.ts).
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

const scopesOf = (p: Publisher): Record<string, ApiKeyScope> =>
  p.apiKeyScopes ?? Object.fromEntries(p.apiKeyHashes.map((h) => [h, 'server' as const]))
const purposesOf = (p: Publisher): Record<string, SigningKeyPurpose> =>
  p.signingKeyPurposes ?? Object.fromEntries(Object.keys(p.signingKeys).map((k) => [k, 'token' as const]))

export const scopeOf = (p: Publisher, hash: string): ApiKeyScope => p.apiKeyScopes?.[hash] ?? 'server'
export const purposeOf = (p: Publisher, keyId: string): SigningKeyPurpose => p.signingKeyPurposes?.[keyId] ?? 'token'

export interface TenantStore {
  getAdvertiser(id: string): Advertiser | undefined
  listAdvertisers(): Advertiser[]
  /** Creates the advertiser and returns its new API key (shown once; only its hash is kept). */
  createAdvertiser(input: { id: string; name: string; apiKey?: string }): Promise<{ advertiser: Advertiser; apiKey: string }>
  getCampaign(id: string): Campaign | undefined
  listCampaigns(filter?: { advertiserId?: string }): Campaign[]
  createCampaign(input: { id: string; advertiserId: string; name?: string; pricing: Pricing }): Promise<Campaign>
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
   * they were signed with); `purpose` defaults to `token`. Old keys keep working until revoked.
   */
  addSigningKey(id: string, input?: { keyId?: string; secret?: string; purpose?: SigningKeyPurpose }): Promise<{ publisher: Publisher; keyId: string; secret: string; purpose: SigningKeyPurpose }>
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
  /** Sets (adds or replaces) the signing secret under a key id, for `purpose` (@default token). */
  setSigningKey(publisherId: string, keyId: string, secret: string, purpose?: SigningKeyPurpose): Promise<void>
  /** Whether any admin key exists (a production store without one needs the bootstrap). */
  hasAdminKey(): boolean
  /** Monotonic number bumped on every change, so the edge can tell configs apart. */
  configVersion(): number
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
}

const P = {
  advertiser: 'adv:',
  campaign: 'cmp:',
  publisher: 'pub:',
  key: 'key:',
  /** Signing key id → publisher id; never removed, so a revoked key id is never given out again. */
  signingKeyId: 'skid:',
  version: 'meta:version',
} as const

export function openTenantStore(options: { dir: string }): TenantStore {
  const db: RootDatabase = open({ path: options.dir, compression: false })

  function list<T>(prefix: string): T[] {
    const out: T[] = []
    for (const { value } of db.getRange({ start: prefix, end: `${prefix}\uffff` })) out.push(value as T)
    return out
  }

  function bump(): void {
    db.put(P.version, ((db.get(P.version) as number | undefined) ?? 0) + 1)
  }

  async function createAdvertiser(input: { id: string; name: string; apiKey?: string }) {
    const apiKey = input.apiKey ?? generateKey('ak')
    const hash = hashApiKey(apiKey)
    let advertiser: Advertiser | undefined
    await db.transaction(() => {
      if (db.get(P.advertiser + input.id) !== undefined) throw new TenantConflictError(`advertiser ${input.id} already exists`)
      if (db.get(P.key + hash) !== undefined) throw new TenantConflictError('that API key is already in use')
      advertiser = { id: input.id, name: input.name, createdAt: Date.now() }
      db.put(P.advertiser + input.id, advertiser)
      db.put(P.key + hash, { kind: 'advertiser', id: input.id } satisfies Principal)
      bump()
    })
    return { advertiser: advertiser!, apiKey }
  }

  async function createCampaign(input: { id: string; advertiserId: string; name?: string; pricing: Pricing }) {
    let campaign: Campaign | undefined
    await db.transaction(() => {
      if (db.get(P.campaign + input.id) !== undefined) throw new TenantConflictError(`campaign ${input.id} already exists`)
      if (db.get(P.advertiser + input.advertiserId) === undefined) {
        throw new TenantReferenceError(`advertiser ${input.advertiserId} does not exist`)
      }
      campaign = {
        id: input.id,
        advertiserId: input.advertiserId,
        name: input.name ?? input.id,
        pricing: { model: input.pricing.model, priceMicros: input.pricing.priceMicros },
        createdAt: Date.now(),
      }
      db.put(P.campaign + input.id, campaign)
      bump()
    })
    return campaign!
  }

  /** Refuses a key id held (or once held) by any publisher. Runs inside the caller's transaction. */
  function claimKeyId(keyId: string, publisherId: string): void {
    if (db.get(P.signingKeyId + keyId) !== undefined || list<Publisher>(P.publisher).some((p) => keyId in p.signingKeys)) {
      throw new TenantConflictError(`signing key ${keyId} already exists`)
    }
    db.put(P.signingKeyId + keyId, publisherId)
  }

  function newSecret(): string {
    return randomBytes(32).toString('base64url')
  }

  async function createPublisher(input: CreatePublisherInput): Promise<CreatedPublisher> {
    const apiKey = input.apiKey ?? generateKey(API_KEY_PREFIX.server)
    const publicKey = input.publicKey ?? generateKey(API_KEY_PREFIX.public)
    const signingKeyId = input.signingKeyId ?? generateKeyId()
    const signingSecret = input.signingSecret ?? newSecret()
    const requestSigningKeyId = input.requestSigningKeyId ?? generateKeyId()
    const requestSigningSecret = input.requestSigningSecret ?? newSecret()
    const hash = hashApiKey(apiKey)
    const publicHash = hashApiKey(publicKey)
    if (hash === publicHash) throw new TenantConflictError('the public and the server API key must differ')
    if (signingKeyId === requestSigningKeyId) throw new TenantConflictError('the token and the request signing key ids must differ')
    let publisher: Publisher | undefined
    await db.transaction(() => {
      if (db.get(P.publisher + input.id) !== undefined) throw new TenantConflictError(`publisher ${input.id} already exists`)
      if (db.get(P.key + hash) !== undefined || db.get(P.key + publicHash) !== undefined) throw new TenantConflictError('that API key is already in use')
      claimKeyId(signingKeyId, input.id)
      claimKeyId(requestSigningKeyId, input.id)
      publisher = {
        id: input.id,
        name: input.name,
        apiKeyHashes: [hash, publicHash],
        apiKeyScopes: { [hash]: 'server', [publicHash]: 'public' },
        signingKeys: { [signingKeyId]: signingSecret, [requestSigningKeyId]: requestSigningSecret },
        signingKeyPurposes: { [signingKeyId]: 'token', [requestSigningKeyId]: 'request' },
        rateLimit: input.rateLimit ?? DEFAULT_RATE_LIMIT,
        active: true,
        createdAt: Date.now(),
      }
      db.put(P.publisher + input.id, publisher)
      db.put(P.key + hash, { kind: 'publisher', id: input.id } satisfies Principal)
      db.put(P.key + publicHash, { kind: 'publisher', id: input.id } satisfies Principal)
      bump()
    })
    return { publisher: publisher!, apiKey, publicKey, signingKeyId, signingSecret, requestSigningKeyId, requestSigningSecret }
  }

  function mustPublisher(id: string): Publisher {
    const p = db.get(P.publisher + id) as Publisher | undefined
    if (!p) throw new TenantReferenceError(`publisher ${id} does not exist`)
    return p
  }

  async function updatePublisher(id: string, patch: { rateLimit?: RateLimit; active?: boolean; name?: string }) {
    let out: Publisher | undefined
    await db.transaction(() => {
      const p = mustPublisher(id)
      out = { ...p, ...(patch.name !== undefined ? { name: patch.name } : {}), ...(patch.rateLimit ? { rateLimit: patch.rateLimit } : {}), ...(patch.active !== undefined ? { active: patch.active } : {}) }
      db.put(P.publisher + id, out)
      bump()
    })
    return out!
  }

  async function addPublisherApiKey(id: string, input: { apiKey?: string; scope?: ApiKeyScope } = {}) {
    const scope = input.scope ?? 'server'
    const apiKey = input.apiKey ?? generateKey(API_KEY_PREFIX[scope])
    const hash = hashApiKey(apiKey)
    let out: Publisher | undefined
    await db.transaction(() => {
      const p = mustPublisher(id)
      if (db.get(P.key + hash) !== undefined) throw new TenantConflictError('that API key is already in use')
      out = { ...p, apiKeyHashes: [...p.apiKeyHashes, hash], apiKeyScopes: { ...scopesOf(p), [hash]: scope } }
      db.put(P.publisher + id, out)
      db.put(P.key + hash, { kind: 'publisher', id } satisfies Principal)
      bump()
    })
    return { publisher: out!, apiKey, scope }
  }

  async function revokePublisherApiKey(id: string, keyHash: string) {
    let out: Publisher | undefined
    await db.transaction(() => {
      const p = mustPublisher(id)
      if (!p.apiKeyHashes.includes(keyHash)) throw new TenantReferenceError('no such key on this publisher')
      if (p.apiKeyHashes.length === 1) throw new TenantConflictError('a publisher keeps at least one API key; add one first')
      const { [keyHash]: _gone, ...scopes } = scopesOf(p)
      out = { ...p, apiKeyHashes: p.apiKeyHashes.filter((h) => h !== keyHash), apiKeyScopes: scopes }
      db.put(P.publisher + id, out)
      db.remove(P.key + keyHash)
      bump()
    })
    return out!
  }

  async function addSigningKey(id: string, input: { keyId?: string; secret?: string; purpose?: SigningKeyPurpose } = {}) {
    const secret = input.secret ?? newSecret()
    const keyId = input.keyId ?? generateKeyId()
    const purpose = input.purpose ?? 'token'
    let out: Publisher | undefined
    await db.transaction(() => {
      const p = mustPublisher(id)
      claimKeyId(keyId, id)
      out = { ...p, signingKeys: { ...p.signingKeys, [keyId]: secret }, signingKeyPurposes: { ...purposesOf(p), [keyId]: purpose } }
      db.put(P.publisher + id, out)
      bump()
    })
    return { publisher: out!, keyId, secret, purpose }
  }

  async function revokeSigningKey(id: string, keyId: string) {
    let out: Publisher | undefined
    await db.transaction(() => {
      const p = mustPublisher(id)
      if (!(keyId in p.signingKeys)) throw new TenantReferenceError('no such signing key on this publisher')
      const { [keyId]: _secret, ...signingKeys } = p.signingKeys
      const { [keyId]: _purpose, ...purposes } = purposesOf(p)
      out = { ...p, signingKeys, signingKeyPurposes: purposes }
      db.put(P.publisher + id, out)
      // Legacy key ids (stored before the index) are claimed now, so they stay taken.
      if (db.get(P.signingKeyId + keyId) === undefined) db.put(P.signingKeyId + keyId, id)
      bump()
    })
    return out!
  }

  async function addAdminKey(id: string, key: string) {
    const hash = hashApiKey(key)
    await db.transaction(() => {
      const existing = db.get(P.key + hash) as Principal | undefined
      if (existing && !(existing.kind === 'admin' && existing.id === id)) throw new TenantConflictError('that key is already in use')
      if (!existing) db.put(P.key + hash, { kind: 'admin', id } satisfies Principal)
    })
  }

  function samePrincipal(a: Principal, b: Principal): boolean {
    return a.kind === b.kind && a.id === b.id
  }

  function keyHashesOf(principal: Principal): string[] {
    const out: string[] = []
    for (const { key, value } of db.getRange({ start: P.key, end: `${P.key}\uffff` })) {
      if (samePrincipal(value as Principal, principal)) out.push(String(key).slice(P.key.length))
    }
    return out
  }

  async function addKey(principal: Principal, key: string, scope: ApiKeyScope = 'server') {
    const hash = hashApiKey(key)
    await db.transaction(() => {
      const existing = db.get(P.key + hash) as Principal | undefined
      if (existing && !samePrincipal(existing, principal)) throw new TenantConflictError('that key is already in use')
      if (principal.kind === 'publisher') {
        const p = mustPublisher(principal.id)
        if (existing && scopeOf(p, hash) === scope) return
        const hashes = p.apiKeyHashes.includes(hash) ? p.apiKeyHashes : [...p.apiKeyHashes, hash]
        db.put(P.publisher + p.id, { ...p, apiKeyHashes: hashes, apiKeyScopes: { ...scopesOf(p), [hash]: scope } })
      } else if (existing) {
        return
      } else if (principal.kind === 'advertiser' && db.get(P.advertiser + principal.id) === undefined) {
        throw new TenantReferenceError(`advertiser ${principal.id} does not exist`)
      }
      db.put(P.key + hash, { kind: principal.kind, id: principal.id } satisfies Principal)
      bump()
    })
  }

  async function removeKey(keyHash: string) {
    await db.transaction(() => {
      const existing = db.get(P.key + keyHash) as Principal | undefined
      if (!existing) return
      if (existing.kind === 'publisher') {
        const p = db.get(P.publisher + existing.id) as Publisher | undefined
        if (p) {
          const { [keyHash]: _gone, ...scopes } = scopesOf(p)
          db.put(P.publisher + p.id, { ...p, apiKeyHashes: p.apiKeyHashes.filter((h) => h !== keyHash), apiKeyScopes: scopes })
        }
      }
      db.remove(P.key + keyHash)
      bump()
    })
  }

  async function setSigningKey(publisherId: string, keyId: string, secret: string, purpose: SigningKeyPurpose = 'token') {
    await db.transaction(() => {
      const p = mustPublisher(publisherId)
      if (p.signingKeys[keyId] === secret && purposeOf(p, keyId) === purpose) return
      const owner = db.get(P.signingKeyId + keyId) as string | undefined
      if (owner !== undefined && owner !== publisherId) throw new TenantConflictError(`signing key id ${keyId} belongs to another publisher`)
      if (owner === undefined) db.put(P.signingKeyId + keyId, publisherId)
      db.put(P.publisher + publisherId, { ...p, signingKeys: { ...p.signingKeys, [keyId]: secret }, signingKeyPurposes: { ...purposesOf(p), [keyId]: purpose } })
      bump()
    })
  }

  return {
    keyHashesOf,
    addKey,
    removeKey,
    setSigningKey,
    hasAdminKey: () => list<Principal>(P.key).some((p) => p.kind === 'admin'),
    getAdvertiser: (id) => db.get(P.advertiser + id) as Advertiser | undefined,
    listAdvertisers: () => list<Advertiser>(P.advertiser),
    createAdvertiser,
    getCampaign: (id) => db.get(P.campaign + id) as Campaign | undefined,
    listCampaigns: (filter) =>
      list<Campaign>(P.campaign).filter((c) => filter?.advertiserId === undefined || c.advertiserId === filter.advertiserId),
    createCampaign,
    getPublisher: (id) => db.get(P.publisher + id) as Publisher | undefined,
    listPublishers: () => list<Publisher>(P.publisher),
    createPublisher,
    updatePublisher,
    addPublisherApiKey,
    revokePublisherApiKey,
    addSigningKey,
    revokeSigningKey,
    addAdminKey,
    principalForKey: (key) => db.get(P.key + hashApiKey(key)) as Principal | undefined,
    configVersion: () => (db.get(P.version) as number | undefined) ?? 0,
    edgeConfig: () => ({
      version: (db.get(P.version) as number | undefined) ?? 0,
      // Campaigns are never deleted, so this set only grows (a verdict on it is stable on replay).
      campaignIds: list<Campaign>(P.campaign).map((c) => c.id),
      publishers: list<Publisher>(P.publisher).map((p) => {
        const keysOf = (purpose: SigningKeyPurpose) =>
          Object.fromEntries(Object.entries(p.signingKeys).filter(([keyId]) => purposeOf(p, keyId) === purpose))
        return {
          id: p.id,
          apiKeyHashes: p.apiKeyHashes.filter((h) => scopeOf(p, h) === 'server'),
          publicKeyHashes: p.apiKeyHashes.filter((h) => scopeOf(p, h) === 'public'),
          signingKeys: keysOf('token'),
          requestSigningKeys: keysOf('request'),
          rateLimit: p.rateLimit,
          active: p.active,
        }
      }),
    }),
    close: () => db.close(),
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
  /** Request signing secret, key id `demo_request`; generated when absent. */
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

/**
 * Seeds the demo tenant of the design (publisher `pub_demo`, advertiser `adv_demo`, campaigns
 * `cmp_demo_cpm` at 2 USD CPM and `cmp_demo_cpc` at 0.50 USD CPC) and makes its keys exactly the
 * configured ones: a key of the demo principals that is not in `seed` is revoked, and the `demo`
 * signing secret is replaced. Core's main calls it on every development start, so changing a
 * DEMO_* variable and restarting retires the old key. Restarting with the same keys changes nothing.
 */
export async function seedDemoTenant(store: TenantStore, seed: DemoSeed): Promise<void> {
  if (!store.getAdvertiser(DEMO_IDS.advertiser)) {
    await store.createAdvertiser({ id: DEMO_IDS.advertiser, name: 'Demo advertiser', apiKey: seed.advertiserKey })
  }
  if (!store.getPublisher(DEMO_IDS.publisher)) {
    await store.createPublisher({
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
    })
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
    await store.createCampaign({
      id: DEMO_IDS.campaignCpm,
      advertiserId: DEMO_IDS.advertiser,
      name: 'Demo CPM campaign',
      pricing: { model: 'cpm', priceMicros: 2_000_000 },
    })
  }
  if (!store.getCampaign(DEMO_IDS.campaignCpc)) {
    await store.createCampaign({
      id: DEMO_IDS.campaignCpc,
      advertiserId: DEMO_IDS.advertiser,
      name: 'Demo CPC campaign',
      pricing: { model: 'cpc', priceMicros: 500_000 },
    })
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
