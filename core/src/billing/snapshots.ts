import { chTime } from '@adc/schemas'
import type { ClickHouseClient } from '@clickhouse/client'
import type { TenantStore } from '../tenants/tenant-store.js'
import { DUPLICATE_VERDICTS, IVT_REASONS, type VerdictGroup } from './final-join.js'

/**
 * Versioned billing snapshots in `billing_snapshots`. A run writes a NEW version (max + 1 for the
 * day); nothing ever updates or deletes a version. Each version also has one marker row with an empty
 * campaign id, so a day that billed nothing still shows that it was closed.
 */

export type SnapshotStatus = 'final' | 'candidate'

export interface SnapshotLine {
  advertiserId: string
  campaignId: string
  publisherId: string
  pricingModel: string
  priceMicros: number
  impressions: number
  /** Of the billable impressions: those whose viewability was measured, and those measured viewable. */
  measuredImpressions: number
  viewableImpressions: number
  clicks: number
  ivtImpressions: number
  ivtClicks: number
  ivtByReason: Record<string, number>
  duplicates: number
  orphanClicks: number
  spendMicros: number
}

export interface SnapshotVersion {
  day: string
  version: number
  status: SnapshotStatus
  jobId: string
  modelVersion: string
  createdAt: number
  /** Why this version was written (scheduled close, watermark close, late events, promotion, manual). */
  reason: string
  /** The final version this one replaces (0: none). */
  supersedes: number
  /** Events received at or after this time (epoch ms) are not in this version. */
  receivedBefore: number
  /** Written after the watermark passed the day's end plus the lateness horizon. */
  complete: boolean
}

export interface VersionMeta {
  status: SnapshotStatus
  jobId: string
  modelVersion: string
  createdAt: number
  reason?: string
  supersedes?: number
  receivedBefore?: number
  complete?: boolean
}

/**
 * Spend in integer micros: CPM is per thousand impressions (rounded down per line), vCPM per thousand
 * viewable impressions (measured viewable; an unmeasured impression is not billed), CPC per click.
 */
export function spendMicros(model: string, priceMicros: number, impressions: number, clicks: number, viewableImpressions = 0): number {
  if (model === 'cpm') return perMille(impressions, priceMicros)
  if (model === 'vcpm') return perMille(viewableImpressions, priceMicros)
  if (model === 'cpc') return clicks * priceMicros
  return 0
}

/**
 * floor(count × price / 1000), exact: the product passes 2^53 (a billion impressions at about $9 CPM)
 * long before the spend does, and a double would round it (a micro too much or too little).
 */
function perMille(count: number, priceMicros: number): number {
  const product = count * priceMicros
  // A safe integer less its remainder divides by 1000 exactly (no rounding of a quotient near an integer).
  if (Number.isSafeInteger(product) && product >= 0) return (product - (product % 1000)) / 1000
  return Number((BigInt(count) * BigInt(priceMicros)) / 1000n)
}

/** Viewable share of the measured impressions; null when none was measured (unknown, not 0 %). */
export function viewabilityRate(measured: number, viewable: number): number | null {
  return measured > 0 ? viewable / measured : null
}

const ivtSet = new Set(IVT_REASONS)

/** Folds final verdicts into one line per campaign and publisher, priced from the tenant store. */
export function buildLines(groups: VerdictGroup[], tenants: Pick<TenantStore, 'getCampaign'>): SnapshotLine[] {
  const lines = new Map<string, SnapshotLine>()
  for (const g of groups) {
    if (g.late) continue
    // Kept by the stream for a campaign not booked when it was read (booked since, or never): neither
    // billed nor invalid traffic of the campaign; the accounting report shows it kept with its reason.
    if (g.verdict === 'unknown_campaign') continue
    // Only booked campaigns bill: events for any other have no advertiser to bill and no price; the
    // accounting report shows them kept as unknown_campaign.
    const campaign = tenants.getCampaign(g.campaignId)
    if (!campaign) continue
    const key = `${g.campaignId}\u001f${g.publisherId}`
    let line = lines.get(key)
    if (!line) {
      line = {
        advertiserId: campaign.advertiserId,
        campaignId: g.campaignId,
        publisherId: g.publisherId,
        pricingModel: campaign.pricing.model,
        priceMicros: campaign.pricing.priceMicros,
        impressions: 0,
        measuredImpressions: 0,
        viewableImpressions: 0,
        clicks: 0,
        ivtImpressions: 0,
        ivtClicks: 0,
        ivtByReason: {},
        duplicates: 0,
        orphanClicks: 0,
        spendMicros: 0,
      }
      lines.set(key, line)
    }
    const click = g.eventType === 'click'
    if (g.verdict === 'billable') {
      if (click) line.clicks += g.events
      else {
        line.impressions += g.events
        line.measuredImpressions += g.measured
        line.viewableImpressions += g.viewable
      }
    } else if (DUPLICATE_VERDICTS.has(g.verdict)) {
      line.duplicates += g.events
    } else if (g.verdict === 'orphan_click') {
      line.orphanClicks += g.events
    } else if (ivtSet.has(g.verdict) || g.verdict === 'ivt_quarantined' || g.verdict.length > 0) {
      if (click) line.ivtClicks += g.events
      else line.ivtImpressions += g.events
      line.ivtByReason[g.verdict] = (line.ivtByReason[g.verdict] ?? 0) + g.events
    }
  }
  for (const line of lines.values()) {
    line.spendMicros = spendMicros(line.pricingModel, line.priceMicros, line.impressions, line.clicks, line.viewableImpressions)
  }
  return [...lines.values()]
}

export interface SnapshotStoreOptions {
  client: ClickHouseClient
  database: string
}

export function createSnapshotStore({ client, database }: SnapshotStoreOptions) {
  const table = `${database}.billing_snapshots`

  async function maxVersion(day: string): Promise<number> {
    const rs = await client.query({
      query: `SELECT max(version) AS v FROM ${table} WHERE day = {day:Date}`,
      query_params: { day },
      format: 'JSONEachRow',
    })
    const [row] = await rs.json<{ v: number | string }>()
    return Number(row?.v ?? 0)
  }

  /** Writes a new version of the day; returns its number. Callers serialise writes per day. */
  async function write(
    day: string,
    lines: SnapshotLine[],
    meta: VersionMeta,
  ): Promise<number> {
    const version = (await maxVersion(day)) + 1
    const base = {
      day, version, status: meta.status, job_id: meta.jobId, model_version: meta.modelVersion, created_at: chTime(meta.createdAt),
      reason: meta.reason ?? '', supersedes: meta.supersedes ?? 0, received_before: chTime(meta.receivedBefore ?? meta.createdAt), complete: meta.complete ? 1 : 0,
    }
    const marker = {
      ...base, advertiser_id: '', campaign_id: '', publisher_id: '', pricing_model: '', price_micros: 0, impressions: 0, clicks: 0,
      ivt_impressions: 0, ivt_clicks: 0, ivt_by_reason: {}, duplicates: 0, orphan_clicks: 0, spend_micros: 0,
      measured_impressions: 0, viewable_impressions: 0,
    }
    const values = [
      marker,
      ...lines.map((l) => ({
        ...base,
        advertiser_id: l.advertiserId,
        campaign_id: l.campaignId,
        publisher_id: l.publisherId,
        pricing_model: l.pricingModel,
        price_micros: l.priceMicros,
        impressions: l.impressions,
        clicks: l.clicks,
        ivt_impressions: l.ivtImpressions,
        ivt_clicks: l.ivtClicks,
        ivt_by_reason: l.ivtByReason,
        duplicates: l.duplicates,
        orphan_clicks: l.orphanClicks,
        spend_micros: l.spendMicros,
        measured_impressions: l.measuredImpressions,
        viewable_impressions: l.viewableImpressions,
      })),
    ]
    await client.insert({ table, values, format: 'JSONEachRow' })
    return version
  }

  /** Copies a version (e.g. a reprocess candidate) into a new final version; the source stays as it was. */
  async function promote(day: string, fromVersion: number, jobId: string, createdAt: number, meta: { reason: string; supersedes: number }): Promise<number> {
    const version = (await maxVersion(day)) + 1
    // Columns by name: migrations add columns at the end of the table.
    const cols = 'advertiser_id, campaign_id, publisher_id, pricing_model, price_micros, impressions, clicks, ivt_impressions, ivt_clicks, ivt_by_reason, duplicates, orphan_clicks, spend_micros, model_version, received_before, complete, measured_impressions, viewable_impressions'
    await client.command({
      query: `INSERT INTO ${table} (day, version, status, job_id, created_at, reason, supersedes, ${cols})
        SELECT day, {version:UInt32}, 'final', {jobId:String}, {createdAt:DateTime64(3, 'UTC')}, {reason:String}, {supersedes:UInt32}, ${cols}
        FROM ${table} WHERE day = {day:Date} AND version = {from:UInt32}`,
      query_params: { version, jobId, createdAt: chTime(createdAt), day, from: fromVersion, reason: meta.reason, supersedes: meta.supersedes },
    })
    return version
  }

  async function versions(day: string): Promise<SnapshotVersion[]> {
    return versionsInRange(day, day)
  }

  async function latestFinal(day: string): Promise<SnapshotVersion | undefined> {
    return (await versions(day)).filter((v) => v.status === 'final').at(-1)
  }

  /** Versions per day in a range, for listings (the dashboard's billing days). */
  async function versionsInRange(from: string, to: string): Promise<SnapshotVersion[]> {
    const rs = await client.query({
      query: `SELECT toString(day) AS day_text, version, any(status) AS status, any(job_id) AS job_id, any(model_version) AS model_version,
          toUnixTimestamp64Milli(min(created_at)) AS created_at, any(reason) AS reason, any(supersedes) AS supersedes,
          toUnixTimestamp64Milli(min(received_before)) AS received_before, max(complete) AS complete
        FROM ${table} WHERE day >= {from:Date} AND day <= {to:Date} GROUP BY day, version ORDER BY day, version`,
      query_params: { from, to },
      format: 'JSONEachRow',
    })
    const rows = await rs.json<Record<string, unknown>>()
    return rows.map((r) => ({
      day: String(r.day_text),
      version: Number(r.version),
      status: r.status === 'candidate' ? 'candidate' : 'final',
      jobId: String(r.job_id),
      modelVersion: String(r.model_version),
      createdAt: Number(r.created_at),
      reason: String(r.reason ?? ''),
      supersedes: Number(r.supersedes ?? 0),
      receivedBefore: Number(r.received_before ?? 0),
      complete: Number(r.complete ?? 0) === 1,
    }))
  }

  async function lines(day: string, version: number, filter: { advertiserId?: string; publisherId?: string } = {}): Promise<SnapshotLine[]> {
    const conds = ['day = {day:Date}', 'version = {version:UInt32}', "campaign_id != ''"]
    if (filter.advertiserId !== undefined) conds.push('advertiser_id = {adv:String}')
    if (filter.publisherId !== undefined) conds.push('publisher_id = {pub:String}')
    const rs = await client.query({
      query: `SELECT * FROM ${table} WHERE ${conds.join(' AND ')} ORDER BY campaign_id, publisher_id`,
      query_params: { day, version, adv: filter.advertiserId ?? '', pub: filter.publisherId ?? '' },
      format: 'JSONEachRow',
    })
    const rows = await rs.json<Record<string, unknown>>()
    return rows.map((r) => ({
      advertiserId: String(r.advertiser_id),
      campaignId: String(r.campaign_id),
      publisherId: String(r.publisher_id),
      pricingModel: String(r.pricing_model),
      priceMicros: Number(r.price_micros),
      impressions: Number(r.impressions),
      measuredImpressions: Number(r.measured_impressions ?? 0),
      viewableImpressions: Number(r.viewable_impressions ?? 0),
      clicks: Number(r.clicks),
      ivtImpressions: Number(r.ivt_impressions),
      ivtClicks: Number(r.ivt_clicks),
      ivtByReason: Object.fromEntries(Object.entries((r.ivt_by_reason ?? {}) as Record<string, unknown>).map(([k, v]) => [k, Number(v)])),
      duplicates: Number(r.duplicates),
      orphanClicks: Number(r.orphan_clicks),
      spendMicros: Number(r.spend_micros),
    }))
  }

  return { write, promote, versions, versionsInRange, latestFinal, lines, maxVersion }
}

export type SnapshotStore = ReturnType<typeof createSnapshotStore>
