/**
 * The tenant config the edge pulls from core (schemas/src/edge-config.ts), indexed for lookups:
 * API key hash to publisher and scope, signing key id to publisher, purpose and (request keys) scope.
 */
import { edgeConfigSchema, type EdgeConfig, type PublisherConfig } from '@adc/schemas'
import { sha256Hex } from '../crypto.js'
import type { Env } from '../env.js'
import { settingsFrom } from '../settings.js'

/** What an API key may do: `public` keys sit in page HTML, `server` keys stay on servers. */
export type KeyScope = 'public' | 'server'
/** What a signing secret may sign: `token` (click and pixel tokens) or `request` (X-Adc-Signature). */
export type KeyPurpose = 'token' | 'request'
/**
 * Where a request key's secret lives: `app` (inside apps: anyone who unpacks one holds it, so its
 * signatures are trusted as the public key) or `server` (the publisher's servers: as a server key).
 */
export type RequestKeyScope = 'app' | 'server'

export interface SigningKey {
  publisher: PublisherConfig
  secret: string
  purpose: KeyPurpose
  /** Request keys only. */
  scope?: RequestKeyScope
}

/**
 * The config with lookups built once: API key hash → publisher and scope, signing key id →
 * publisher, secret and purpose, and the booked campaigns. A key id or API key hash that two
 * publishers (or two purposes) claim is refused for all of them and logged: core gives out
 * unique ids, so a collision is a configuration error, and guessing an owner would let one
 * publisher's secret sign for another.
 */
export class TenantIndex {
  readonly byKeyHash = new Map<string, { publisher: PublisherConfig; scope: KeyScope }>()
  readonly bySigningKey = new Map<string, SigningKey>()
  readonly byId = new Map<string, PublisherConfig>()
  readonly campaigns: ReadonlySet<string>
  /** Campaigns booked with some publishers only: their publishers. */
  readonly campaignPublishers: ReadonlyMap<string, ReadonlySet<string>>
  /** Key ids and key hashes refused because more than one owner claims them. */
  readonly collisions: { keyIds: string[]; keyHashes: string[] }

  constructor(readonly config: EdgeConfig, log: (message: string, detail: unknown) => void = (m, d) => console.error(m, JSON.stringify(d))) {
    this.campaigns = new Set(config.campaignIds)
    this.campaignPublishers = new Map(Object.entries(config.campaignPublishers).map(([c, ps]) => [c, new Set(ps)]))
    const keyOwners = new Map<string, string[]>()
    const hashOwners = new Map<string, string[]>()
    const claim = (owners: Map<string, string[]>, id: string, who: string) => {
      const list = owners.get(id)
      if (list) list.push(who)
      else owners.set(id, [who])
    }
    for (const p of config.publishers) {
      this.byId.set(p.id, p)
      for (const h of p.apiKeyHashes) claim(hashOwners, h, `${p.id}:server`)
      for (const h of p.publicKeyHashes) claim(hashOwners, h, `${p.id}:public`)
      for (const keyId of Object.keys(p.signingKeys)) claim(keyOwners, keyId, `${p.id}:token`)
      for (const keyId of Object.keys(p.requestSigningKeys)) claim(keyOwners, keyId, `${p.id}:request`)
      for (const keyId of Object.keys(p.appRequestSigningKeys)) claim(keyOwners, keyId, `${p.id}:app_request`)
    }
    const keyIds = [...keyOwners].filter(([, o]) => o.length > 1)
    const keyHashes = [...hashOwners].filter(([, o]) => o.length > 1)
    this.collisions = { keyIds: keyIds.map(([k]) => k), keyHashes: keyHashes.map(([h]) => h) }
    for (const [keyId, owners] of keyIds) log('edge config: signing key id claimed more than once; refused for every claimant', { code: 'key_collision', keyId, owners })
    for (const [, owners] of keyHashes) log('edge config: API key hash claimed more than once; refused for every claimant', { code: 'key_collision', owners })
    for (const p of config.publishers) {
      for (const h of p.apiKeyHashes) if (hashOwners.get(h)!.length === 1) this.byKeyHash.set(h, { publisher: p, scope: 'server' })
      for (const h of p.publicKeyHashes) if (hashOwners.get(h)!.length === 1) this.byKeyHash.set(h, { publisher: p, scope: 'public' })
      for (const [keyId, secret] of Object.entries(p.signingKeys)) {
        if (keyOwners.get(keyId)!.length === 1) this.bySigningKey.set(keyId, { publisher: p, secret, purpose: 'token' })
      }
      for (const [keyId, secret] of Object.entries(p.requestSigningKeys)) {
        if (keyOwners.get(keyId)!.length === 1) this.bySigningKey.set(keyId, { publisher: p, secret, purpose: 'request', scope: 'server' })
      }
      for (const [keyId, secret] of Object.entries(p.appRequestSigningKeys)) {
        if (keyOwners.get(keyId)!.length === 1) this.bySigningKey.set(keyId, { publisher: p, secret, purpose: 'request', scope: 'app' })
      }
    }
  }

  /** The publisher and scope of an API key, or undefined for an unknown (or revoked) key. */
  async byApiKey(apiKey: string): Promise<{ publisher: PublisherConfig; scope: KeyScope } | undefined> {
    return this.byKeyHash.get(await sha256Hex(apiKey))
  }

  /** A signing key of the given purpose; a key of the other purpose is not found. */
  signingKey(keyId: string, purpose: KeyPurpose): SigningKey | undefined {
    const hit = this.bySigningKey.get(keyId)
    return hit && hit.purpose === purpose ? hit : undefined
  }

  /** The secret of a token key id, only if the publisher is active; request keys never verify a token. */
  secretFor(keyId: string): string | undefined {
    const hit = this.signingKey(keyId, 'token')
    return hit && hit.publisher.active ? hit.secret : undefined
  }

  /** Whether this publisher's events for this campaign may be accepted (booked, and booked with it). */
  isBooked(campaignId: string, publisherId: string): boolean {
    if (!this.campaigns.has(campaignId)) return false
    const only = this.campaignPublishers.get(campaignId)
    return only === undefined || only.has(publisherId)
  }
}

export class ConfigUnavailableError extends Error {
  readonly retriable = true
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ConfigUnavailableError'
  }
}

export interface TenantSourceOptions {
  /** Static JSON (EDGE_CONFIG_JSON); when set, core is never asked. */
  staticJson?: string | undefined
  coreUrl: string
  syncKey: string
  /** @default 30_000 */
  ttlMs?: number
  /** A pull not settled after this long is given up (its request was cancelled). @default 5_000 */
  abandonAfterMs?: number
  fetcher?: typeof fetch
  now?: () => number
}

/**
 * Tenant config, cached per isolate: pulled from core at most once per `ttlMs`; when core is down,
 * the last good config is kept (a publisher keeps working through a core restart). Only when no
 * config was ever loaded does a request fail, with 503.
 *
 * No request waits on another request's I/O when it need not: the runtime ties a fetch to the
 * request that started it, and a request cancelled mid-pull would leave every request awaiting its
 * promise hung (the runtime then cancels them too). So while one request refreshes a stale config,
 * the others answer from the last good one; only without any config do they wait for the pull in
 * flight, each under its own timer; and a pull that has not settled after `abandonAfterMs` (its
 * request was cancelled) is forgotten, so the next request pulls again.
 */
export class TenantSource {
  private current: TenantIndex | undefined
  private fetchedAt = 0
  private inflight: Promise<TenantIndex> | undefined
  private inflightSince = 0

  constructor(private readonly opts: TenantSourceOptions) {}

  async get(): Promise<TenantIndex> {
    const { staticJson } = this.opts
    if (staticJson) {
      if (!this.current) {
        let json: unknown
        try {
          json = JSON.parse(staticJson)
        } catch (cause) {
          throw new ConfigUnavailableError('EDGE_CONFIG_JSON is not valid JSON', { cause })
        }
        const parsed = edgeConfigSchema.safeParse(json)
        if (!parsed.success) throw new ConfigUnavailableError('EDGE_CONFIG_JSON does not match the edge config schema')
        this.current = new TenantIndex(parsed.data)
      }
      return this.current
    }
    const now = (this.opts.now ?? Date.now)()
    if (this.current && now - this.fetchedAt < (this.opts.ttlMs ?? 30_000)) return this.current
    const abandonAfterMs = this.opts.abandonAfterMs ?? 5_000
    if (this.inflight && now - this.inflightSince < abandonAfterMs) {
      // Another request is pulling: the last good config meanwhile, or wait for it under our own timer.
      if (this.current) return this.current
      return this.awaitOthers(this.inflight, abandonAfterMs)
    }
    const pull = this.pull().finally(() => {
      if (this.inflight === pull) this.inflight = undefined
    })
    this.inflight = pull
    this.inflightSince = now
    try {
      return await pull
    } catch (err) {
      if (this.current) return this.current
      throw err
    }
  }

  private async awaitOthers(inflight: Promise<TenantIndex>, timeoutMs: number): Promise<TenantIndex> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConfigUnavailableError('tenant config is still being fetched from core')), timeoutMs)
    })
    try {
      return await Promise.race([inflight, timeout])
    } finally {
      if (timer !== undefined) clearTimeout(timer)
    }
  }

  private async pull(): Promise<TenantIndex> {
    const fetcher = this.opts.fetcher ?? fetch
    let res: Response
    try {
      res = await fetcher(`${this.opts.coreUrl.replace(/\/$/, '')}/v1/internal/edge-config`, {
        headers: { authorization: `Bearer ${this.opts.syncKey}` },
        signal: AbortSignal.timeout(2000),
      })
    } catch (cause) {
      throw new ConfigUnavailableError('tenant config could not be fetched from core', { cause })
    }
    if (!res.ok) throw new ConfigUnavailableError(`tenant config request answered ${res.status}`)
    const parsed = edgeConfigSchema.safeParse(await res.json().catch(() => null))
    if (!parsed.success) throw new ConfigUnavailableError('tenant config from core is malformed')
    this.current = new TenantIndex(parsed.data)
    this.fetchedAt = (this.opts.now ?? Date.now)()
    return this.current
  }
}

const sources = new Map<string, TenantSource>()

/** One source per distinct configuration, kept for the isolate's life. */
export function tenantSourceFor(opts: TenantSourceOptions): TenantSource {
  const id = `${opts.staticJson ?? ''}|${opts.coreUrl}|${opts.syncKey}|${opts.ttlMs ?? ''}`
  let s = sources.get(id)
  if (!s) {
    s = new TenantSource(opts)
    sources.set(id, s)
  }
  return s
}

/** The tenant config for this Worker's variables (cached per isolate); throws ConfigUnavailableError. */
export function tenantsFor(env: Env): Promise<TenantIndex> {
  const settings = settingsFrom(env)
  return tenantSourceFor({ staticJson: env.EDGE_CONFIG_JSON, coreUrl: settings.coreUrl, syncKey: settings.edgeSyncKey, ttlMs: settings.configTtlMs }).get()
}
