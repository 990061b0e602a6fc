import { createHash, randomBytes } from 'node:crypto'
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

export interface Publisher {
  id: string
  name: string
  apiKeyHashes: string[]
  /** Token and request signing secrets by key id; secrets rotate by adding a key id. */
  signingKeys: Record<string, string>
  rateLimit: RateLimit
  active: boolean
  createdAt: number
}

export type PrincipalKind = 'admin' | 'advertiser' | 'publisher'

export interface Principal {
  kind: PrincipalKind
  id: string
}

/** The tenant config the edge pulls (shared contract: `GET /v1/internal/edge-config`). */
export interface EdgeConfig {
  version: number
  publishers: Array<{
    id: string
    apiKeyHashes: string[]
    signingKeys: Record<string, string>
    rateLimit: RateLimit
    active: boolean
  }>
}

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
  createPublisher(input: {
    id: string
    name: string
    apiKey?: string
    signingKeyId?: string
    signingSecret?: string
    rateLimit?: RateLimit
  }): Promise<{ publisher: Publisher; apiKey: string; signingKeyId: string; signingSecret: string }>
  /** Changes a publisher's rate limit or active flag; the edge picks it up with its next config pull. */
  updatePublisher(id: string, patch: { rateLimit?: RateLimit; active?: boolean; name?: string }): Promise<Publisher>
  /** Adds an API key (rotation: old keys keep working until revoked). Returns the new key once. */
  addPublisherApiKey(id: string, apiKey?: string): Promise<{ publisher: Publisher; apiKey: string }>
  /** Removes an API key by its SHA-256 hash; a publisher keeps at least one key. */
  revokePublisherApiKey(id: string, keyHash: string): Promise<Publisher>
  /** Adds a signing secret under a new key id (tokens name the key id they were signed with). */
  addSigningKey(id: string, input?: { keyId?: string; secret?: string }): Promise<{ publisher: Publisher; keyId: string; secret: string }>
  /** Registers an admin key (idempotent for the same key). */
  addAdminKey(id: string, key: string): Promise<void>
  /** Resolves a bearer key by its SHA-256 hash. */
  principalForKey(key: string): Principal | undefined
  /** Monotonic number bumped on every change, so the edge can tell configs apart. */
  configVersion(): number
  edgeConfig(): EdgeConfig
  close(): Promise<void>
}

const P = {
  advertiser: 'adv:',
  campaign: 'cmp:',
  publisher: 'pub:',
  key: 'key:',
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

  async function createPublisher(input: {
    id: string
    name: string
    apiKey?: string
    signingKeyId?: string
    signingSecret?: string
    rateLimit?: RateLimit
  }) {
    const apiKey = input.apiKey ?? generateKey('pk')
    const signingKeyId = input.signingKeyId ?? 'k1'
    const signingSecret = input.signingSecret ?? randomBytes(32).toString('base64url')
    const hash = hashApiKey(apiKey)
    let publisher: Publisher | undefined
    await db.transaction(() => {
      if (db.get(P.publisher + input.id) !== undefined) throw new TenantConflictError(`publisher ${input.id} already exists`)
      if (db.get(P.key + hash) !== undefined) throw new TenantConflictError('that API key is already in use')
      publisher = {
        id: input.id,
        name: input.name,
        apiKeyHashes: [hash],
        signingKeys: { [signingKeyId]: signingSecret },
        rateLimit: input.rateLimit ?? DEFAULT_RATE_LIMIT,
        active: true,
        createdAt: Date.now(),
      }
      db.put(P.publisher + input.id, publisher)
      db.put(P.key + hash, { kind: 'publisher', id: input.id } satisfies Principal)
      bump()
    })
    return { publisher: publisher!, apiKey, signingKeyId, signingSecret }
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

  async function addPublisherApiKey(id: string, apiKey = generateKey('pk')) {
    const hash = hashApiKey(apiKey)
    let out: Publisher | undefined
    await db.transaction(() => {
      const p = mustPublisher(id)
      if (db.get(P.key + hash) !== undefined) throw new TenantConflictError('that API key is already in use')
      out = { ...p, apiKeyHashes: [...p.apiKeyHashes, hash] }
      db.put(P.publisher + id, out)
      db.put(P.key + hash, { kind: 'publisher', id } satisfies Principal)
      bump()
    })
    return { publisher: out!, apiKey }
  }

  async function revokePublisherApiKey(id: string, keyHash: string) {
    let out: Publisher | undefined
    await db.transaction(() => {
      const p = mustPublisher(id)
      if (!p.apiKeyHashes.includes(keyHash)) throw new TenantReferenceError('no such key on this publisher')
      if (p.apiKeyHashes.length === 1) throw new TenantConflictError('a publisher keeps at least one API key; add one first')
      out = { ...p, apiKeyHashes: p.apiKeyHashes.filter((h) => h !== keyHash) }
      db.put(P.publisher + id, out)
      db.remove(P.key + keyHash)
      bump()
    })
    return out!
  }

  async function addSigningKey(id: string, input: { keyId?: string; secret?: string } = {}) {
    const secret = input.secret ?? randomBytes(32).toString('base64url')
    let keyId = input.keyId
    let out: Publisher | undefined
    await db.transaction(() => {
      const p = mustPublisher(id)
      if (keyId === undefined) {
        let n = Object.keys(p.signingKeys).length + 1
        while (`k${n}` in p.signingKeys) n++
        keyId = `k${n}`
      }
      if (keyId in p.signingKeys) throw new TenantConflictError(`signing key ${keyId} already exists`)
      out = { ...p, signingKeys: { ...p.signingKeys, [keyId]: secret } }
      db.put(P.publisher + id, out)
      bump()
    })
    return { publisher: out!, keyId: keyId!, secret }
  }

  async function addAdminKey(id: string, key: string) {
    const hash = hashApiKey(key)
    await db.transaction(() => {
      const existing = db.get(P.key + hash) as Principal | undefined
      if (existing && !(existing.kind === 'admin' && existing.id === id)) throw new TenantConflictError('that key is already in use')
      if (!existing) db.put(P.key + hash, { kind: 'admin', id } satisfies Principal)
    })
  }

  return {
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
    addAdminKey,
    principalForKey: (key) => db.get(P.key + hashApiKey(key)) as Principal | undefined,
    configVersion: () => (db.get(P.version) as number | undefined) ?? 0,
    edgeConfig: () => ({
      version: (db.get(P.version) as number | undefined) ?? 0,
      publishers: list<Publisher>(P.publisher).map((p) => ({
        id: p.id,
        apiKeyHashes: p.apiKeyHashes,
        signingKeys: p.signingKeys,
        rateLimit: p.rateLimit,
        active: p.active,
      })),
    }),
    close: () => db.close(),
  }
}

export interface DemoSeed {
  publisherKey: string
  advertiserKey: string
  signingSecret: string
  adminKey: string
}

export const DEMO_IDS = {
  publisher: 'pub_demo',
  advertiser: 'adv_demo',
  signingKeyId: 'demo',
  campaignCpm: 'cmp_demo_cpm',
  campaignCpc: 'cmp_demo_cpc',
  admin: 'admin_demo',
} as const

/**
 * Seeds the demo tenant of the design (publisher `pub_demo`, advertiser `adv_demo`, campaigns
 * `cmp_demo_cpm` at 2 USD CPM and `cmp_demo_cpc` at 0.50 USD CPC). Idempotent: whatever exists is
 * left as is, so restarting with the same keys changes nothing.
 */
export async function seedDemoTenant(store: TenantStore, seed: DemoSeed): Promise<void> {
  await store.addAdminKey(DEMO_IDS.admin, seed.adminKey)
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
      rateLimit: DEFAULT_RATE_LIMIT,
    })
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
export const DEMO_DEFAULTS: DemoSeed = {
  publisherKey: 'pk_demo_publisher_dev',
  advertiserKey: 'ak_demo_advertiser_dev',
  signingSecret: 'demo-signing-secret-dev',
  adminKey: 'admin_demo_dev',
}
