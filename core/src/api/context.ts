import { ID_PATTERN, type BucketSpec } from '@adc/schemas'
import type { ClickHouseClient } from '@clickhouse/client'
import { z } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { BillingJobs } from '../billing/jobs.js'
import type { RawEraser } from '../privacy/erase.js'
import type { ObjectStore } from '../objects/object-store.js'
import { dayStart, isValidDay } from '../billing/days.js'
import { DEFAULT_RETENTION, keptFrom, type RetentionConfig } from '../clickhouse/retention.js'
import { hashApiKey, scopeOf, type Principal, type TenantStore } from '../tenants/tenant-store.js'
import { keyFingerprint, type TenantActor } from '../tenants/change-log.js'
import { ApiError } from './errors.js'

export interface ApiDeps {
  clickhouse: ClickHouseClient
  /** ClickHouse database holding the tables of ddl.ts. @default 'adc' */
  database: string
  tenants: TenantStore
  /**
   * Billing and reprocess jobs (`createBillingJobs`); the caller starts and stops it. When absent,
   * `createApiApp` creates and starts one with its job records under `<dataDir>/billing-jobs`.
   */
  billing?: BillingJobs
  /** Core's data directory; needed only when `billing` is not given. */
  dataDir?: string
  /** prom-client registry the API registers its request metrics into (and serves at `/metrics`). */
  registry?: Registry
  logger: Logger
  /** Epoch ms. @default Date.now */
  clock?: () => number
  /**
   * Bearer key the edge uses to pull its tenant config (`EDGE_SYNC_KEY`). When given, this app also
   * serves `/v1/internal/edge-config`; core's main leaves it out and serves that on the internal port.
   */
  edgeSyncKey?: string
  /**
   * Raw stores erased outside ClickHouse by `POST /v1/admin/privacy/delete` (privacy/erase.ts).
   * Core's main passes the Iceberg table's eraser (privacy/iceberg-eraser.ts) when the lake is on.
   * @default the Iceberg table, recorded as pending (no lake eraser given)
   */
  rawErasers?: RawEraser[]
  /**
   * Where the reconcile export files are written and read (billing/exports.ts): S3 in compose.
   * @default a local directory, `<dataDir>/exports`
   */
  exportStore?: ObjectStore
  /** Validity of the presigned URLs the export listing hands out (S3 only). @default 900 */
  exportUrlTtlSeconds?: number
  /**
   * Each advertiser or publisher key's request budget on this replica (API_RATE_LIMIT_PER_SECOND,
   * API_RATE_LIMIT_BURST; api/key-limit.ts). Core's main always gives one. @default none (no limit)
   */
  keyLimit?: BucketSpec
  /**
   * Days the minute rollups are kept (RETENTION_MINUTE_ROLLUP_DAYS; 0 = forever): metrics reads
   * older than that come from the hourly rollups (api/rollup-plan.ts). @default 35
   */
  minuteRollupDays?: number
  /**
   * The other ClickHouse TTLs (RETENTION_RAW_DAYS, RETENTION_HOURLY_ROLLUP_DAYS,
   * RETENTION_BAD_ROWS_DAYS, RETENTION_IVT_DAYS; 0 = forever): a read or a recomputation reaching back before what a
   * table still keeps is refused with `beyond_retention` (or, for the metrics, answered for the part
   * kept), never answered from rows that are gone. @default DEFAULT_RETENTION
   */
  retention?: Partial<Pick<RetentionConfig, 'rawDays' | 'hourlyRollupDays' | 'badRowsDays' | 'ivtDecisionsDays'>>
  /**
   * This replica's region and the home region (REGION, HOME_REGION). When both are given and
   * differ, tenant and billing writes answer 421 `not_home_region` (api/home-region.ts).
   */
  region?: string
  homeRegion?: string
}

/** Dependencies after `createApiApp` filled in the defaults. */
export type ResolvedApiDeps = ApiDeps & { billing: BillingJobs; clock: () => number }

export type ApiEnv = { Variables: { principal: Principal } }

export const idParam = z.string().regex(ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 _ . : -')
export const dayParam = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a UTC day YYYY-MM-DD')
  .refine(isValidDay, 'must be a real calendar day')
  // ClickHouse `Date`'s range: outside it the engine saturates the day, and one day's job would write another's versions.
  .refine((d) => d >= '1970-01-01' && d <= '2149-06-06', 'must lie between 1970-01-01 and 2149-06-06')
  .openapi({ example: '2026-11-20', format: 'date' })
export const ulidParam = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a job id (ULID)')

export function bearer(c: Context): string | undefined {
  const h = c.req.header('authorization')
  if (!h) return undefined
  const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(h)
  return m?.[1]
}

/** Resolves the bearer key to a principal for every `/v1` route except the edge's config pull. */
export function authenticate(tenants: TenantStore): MiddlewareHandler<ApiEnv> {
  return async function auth(c, next) {
    const key = bearer(c)
    if (!key) throw new ApiError('unauthorized', 'send Authorization: Bearer <key>')
    const principal = tenants.principalForKey(key)
    if (!principal) throw new ApiError('unauthorized', 'unknown API key')
    // A publisher's public-scope key is in page HTML (tag data-key, beacon ?k=): it sends events to
    // the edge and reads nothing here; the publisher reads its settlement with a server key.
    if (principal.kind === 'publisher') {
      const publisher = tenants.getPublisher(principal.id)
      if (publisher && scopeOf(publisher, hashApiKey(key)) === 'public') {
        throw new ApiError('forbidden', "a public-scope key only sends events to the edge; read the API with the publisher's server key")
      }
    }
    c.set('principal', principal)
    await next()
  }
}

export function requireAdmin(c: Context<ApiEnv>): Principal {
  const p = c.get('principal')
  if (p.kind !== 'admin') throw new ApiError('forbidden', 'this route needs an admin key')
  return p
}

/**
 * The admin key of the request as the actor of the tenant changes it makes: its principal id and its
 * key's fingerprint (never the key). Refuses any other key, as requireAdmin.
 */
export function requireAdminActor(c: Context<ApiEnv>): TenantActor {
  const admin = requireAdmin(c)
  const key = bearer(c)
  if (key === undefined) throw new ApiError('unauthorized', 'send Authorization: Bearer <key>')
  return { kind: 'admin', id: admin.id, keyFingerprint: keyFingerprint(hashApiKey(key)) }
}

/** An advertiser sees only its own campaigns; an admin sees all; a publisher none. */
export function requireCampaignAccess(c: Context<ApiEnv>, tenants: TenantStore, campaignId: string) {
  const p = c.get('principal')
  const campaign = tenants.getCampaign(campaignId)
  if (p.kind === 'admin') {
    if (!campaign) throw new ApiError('not_found', `no campaign ${campaignId}`)
    return campaign
  }
  if (p.kind === 'advertiser' && campaign && campaign.advertiserId === p.id) return campaign
  // Same answer for another tenant's campaign and an unknown one: ids of others are not revealed.
  throw new ApiError('forbidden', `campaign ${campaignId} is not one of this key's campaigns`)
}

export function requireAdvertiserAccess(c: Context<ApiEnv>, tenants: TenantStore, advertiserId: string | undefined): string {
  const p = c.get('principal')
  if (p.kind === 'advertiser') {
    if (advertiserId !== undefined && advertiserId !== p.id) throw new ApiError('forbidden', 'an advertiser key sees only its own billing')
    return p.id
  }
  if (p.kind === 'admin') {
    if (advertiserId === undefined) throw new ApiError('invalid_query', 'advertiserId: required with an admin key')
    if (!tenants.getAdvertiser(advertiserId)) throw new ApiError('not_found', `no advertiser ${advertiserId}`)
    return advertiserId
  }
  throw new ApiError('forbidden', 'a publisher key cannot read advertiser billing')
}

export function requirePublisherAccess(c: Context<ApiEnv>, tenants: TenantStore, publisherId: string | undefined): string {
  const p = c.get('principal')
  if (p.kind === 'publisher') {
    if (publisherId !== undefined && publisherId !== p.id) throw new ApiError('forbidden', 'a publisher key sees only its own settlement')
    return p.id
  }
  if (p.kind === 'admin') {
    if (publisherId === undefined) throw new ApiError('invalid_query', 'publisherId: required with an admin key')
    if (!tenants.getPublisher(publisherId)) throw new ApiError('not_found', `no publisher ${publisherId}`)
    return publisherId
  }
  throw new ApiError('forbidden', 'an advertiser key cannot read publisher settlement')
}

/** Days in the future (UTC) cannot be billed or reported yet. */
export function refuseFutureDay(day: string, now: number): void {
  if (day > new Date(now).toISOString().slice(0, 10)) throw new ApiError('invalid_range', `day ${day} is in the future (UTC)`)
}

/** The tables whose retention bounds what the API may read or recompute, with their settings. */
const RETAINED = {
  events_raw: ['rawDays', 'RETENTION_RAW_DAYS'],
  hourly_rollups: ['hourlyRollupDays', 'RETENTION_HOURLY_ROLLUP_DAYS'],
  bad_rows: ['badRowsDays', 'RETENTION_BAD_ROWS_DAYS'],
  ivt_decisions: ['ivtDecisionsDays', 'RETENTION_IVT_DAYS'],
} as const satisfies Record<string, [keyof RetentionConfig, string]>

/** Days `table` keeps its rows under these deps (0 = forever). */
export function retentionDays(deps: Pick<ApiDeps, 'retention'>, table: keyof typeof RETAINED): number {
  const key = RETAINED[table][0]
  return deps.retention?.[key] ?? DEFAULT_RETENTION[key]
}

/** Whether `table` may no longer keep its rows from `from` on (what `refuseBeyondRetention` refuses). */
export function beyondRetention(deps: Pick<ApiDeps, 'retention'>, table: keyof typeof RETAINED, from: number, now: number): boolean {
  return from < keptFrom(now, retentionDays(deps, table))
}

/**
 * Refuses (410 `beyond_retention`) `what` when it reads `table`'s rows from `from` on and the
 * table no longer surely keeps them: a bill closed, a reprocess run or a report read from rows the
 * TTL removed would state zeros or a part as the whole.
 */
export function refuseBeyondRetention(deps: Pick<ApiDeps, 'retention'>, table: keyof typeof RETAINED, from: number, now: number, what: string): void {
  if (!beyondRetention(deps, table, from, now)) return
  const days = retentionDays(deps, table)
  throw new ApiError('beyond_retention', `${what} reads ${table} from ${new Date(from).toISOString()}, which keeps ${days} days (${RETAINED[table][1]}): rows it needs may be gone, so it is refused rather than answered incomplete`)
}

/** The start of `day` less `lookBackMs`, for refuseBeyondRetention. */
export const dayReach = (day: string, lookBackMs = 0): number => dayStart(day) - lookBackMs

export const TIME_HELP = 'an ISO 8601 time with zone (2026-11-20T10:00:00Z) or epoch milliseconds'

/** Parses a time query value: epoch ms digits or an ISO 8601 date-time; undefined when malformed. */
export function parseTime(value: string): number | undefined {
  if (/^\d{1,15}$/.test(value)) return Number(value)
  // A time of day needs its zone: without one, JavaScript would read it in the server's local time.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value)) return undefined
  const t = Date.parse(value)
  return Number.isFinite(t) ? t : undefined
}

export const timeParam = z.string().max(40).refine((v) => parseTime(v) !== undefined, `must be ${TIME_HELP}`)

export const bearerSecurity = [{ bearerAuth: [] as string[] }]
