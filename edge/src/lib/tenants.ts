import { z } from 'zod'
import { sha256Hex } from './crypto.js'

/** One publisher as core serves it at `GET /v1/internal/edge-config` (shared contract). */
export const publisherConfigSchema = z.object({
  id: z.string().min(1),
  apiKeyHashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)),
  signingKeys: z.record(z.string(), z.string().min(1)),
  rateLimit: z.object({ perSecond: z.number().positive(), burst: z.number().positive() }),
  active: z.boolean(),
})

export const edgeConfigSchema = z.object({
  version: z.number().int(),
  publishers: z.array(publisherConfigSchema),
})

export type PublisherConfig = z.infer<typeof publisherConfigSchema>
export type EdgeConfig = z.infer<typeof edgeConfigSchema>

/** The config with lookups built once: API key hash → publisher, signing key id → publisher + secret. */
export class TenantIndex {
  readonly byKeyHash = new Map<string, PublisherConfig>()
  readonly bySigningKey = new Map<string, { publisher: PublisherConfig; secret: string }>()
  readonly byId = new Map<string, PublisherConfig>()

  constructor(readonly config: EdgeConfig) {
    for (const p of config.publishers) {
      this.byId.set(p.id, p)
      for (const h of p.apiKeyHashes) this.byKeyHash.set(h, p)
      for (const [keyId, secret] of Object.entries(p.signingKeys)) this.bySigningKey.set(keyId, { publisher: p, secret })
    }
  }

  async byApiKey(apiKey: string): Promise<PublisherConfig | undefined> {
    return this.byKeyHash.get(await sha256Hex(apiKey))
  }

  /** A signing secret for a token key id, only if the publisher is active. */
  secretFor(keyId: string): string | undefined {
    const hit = this.bySigningKey.get(keyId)
    return hit && hit.publisher.active ? hit.secret : undefined
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
  fetcher?: typeof fetch
  now?: () => number
}

/**
 * Tenant config, cached per isolate: pulled from core at most once per `ttlMs`; when core is down,
 * the last good config is kept (a publisher keeps working through a core restart). Only when no
 * config was ever loaded does a request fail, with 503.
 */
export class TenantSource {
  private current: TenantIndex | undefined
  private fetchedAt = 0
  private inflight: Promise<TenantIndex> | undefined

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
    this.inflight ??= this.pull().finally(() => {
      this.inflight = undefined
    })
    try {
      return await this.inflight
    } catch (err) {
      if (this.current) return this.current
      throw err
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
