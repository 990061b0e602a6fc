import { csvField } from './csv.js'
import type { ClickHouseClient } from '@clickhouse/client'
import { createHash } from 'node:crypto'
import type { ObjectStore } from '../objects/object-store.js'
import type { SnapshotLine, SnapshotStore, SnapshotVersion } from './snapshots.js'

/**
 * Export files of a closed day: for each advertiser and each publisher with lines in the day's latest
 * final snapshot version, one CSV and one Parquet file of those lines, in an object store (a local
 * directory embedded, S3 in compose) under `<day>/v<version>/`, with `manifest.json` beside them
 * naming each file's rows, bytes and SHA-256.
 *
 * Written once per version: a re-close is a new version, so its files go under a new prefix and the
 * old ones stay as they were. Write, then publish: the data files are put first and the manifest
 * last, and only a manifest makes a version's files visible (a reader never sees a file that is
 * being written, nor a version half written). The Parquet files are written by ClickHouse itself
 * (`SELECT … FORMAT Parquet` over `billing_snapshots`), never by hand.
 *
 * Who writes: the billing lease holder, right after the close or promotion that made the version
 * (`publish`, called by the job, billing/jobs.ts). A listing or fetch finding the latest version
 * unpublished (that write failed, or has not happened yet) writes it itself (`ensure`), on any
 * replica: the same snapshot rows through the same engine give the same bytes, so two writers of
 * one version put identical files. The manifest is put once per version: a writer that finds one
 * published when it is about to publish keeps that one and returns it.
 */
export type ExportFormat = 'csv' | 'parquet'
export type ExportKind = 'advertiser' | 'publisher'

export interface ExportFile {
  name: string
  kind: ExportKind
  id: string
  format: ExportFormat
  rows: number
  bytes: number
  sha256: string
}

/** The manifest of one version's files (`<day>/v<version>/manifest.json`). */
export interface DayExport {
  /** MANIFEST_FORMAT when written; a manifest of another format is written again. */
  format: number
  day: string
  snapshotVersion: number
  /** The version was closed after the lateness horizon (see the billing close). */
  complete: boolean
  /** When the version was written (epoch ms). */
  finalAt: number
  files: ExportFile[]
}

/** The manifest format this module writes (1, CSV only, was the local directory's first layout). */
export const MANIFEST_FORMAT = 2

/** Columns of both formats, in order; names as in `billing_snapshots`. */
export const EXPORT_COLUMNS = [
  'day', 'version', 'advertiser_id', 'campaign_id', 'publisher_id', 'pricing_model', 'price_micros', 'impressions',
  'measured_impressions', 'viewable_impressions', 'clicks', 'ivt_impressions', 'ivt_clicks', 'duplicates', 'orphan_clicks', 'spend_micros',
] as const

/** A file name this module writes: `<kind>-<id>.<format>` with an id of ID_PATTERN. */
export const EXPORT_FILE_NAME = /^(advertiser|publisher)-([A-Za-z0-9_.:-]{1,128})\.(csv|parquet)$/

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  // Registered with IANA in 2024.
  parquet: 'application/vnd.apache.parquet',
}

export function parseExportName(name: string): { kind: ExportKind; id: string; format: ExportFormat } | undefined {
  const m = EXPORT_FILE_NAME.exec(name)
  return m ? { kind: m[1] as ExportKind, id: m[2]!, format: m[3] as ExportFormat } : undefined
}


function csv(day: string, version: number, lines: SnapshotLine[]): Buffer {
  const rows = lines.map((l) => [
    day, version, l.advertiserId, l.campaignId, l.publisherId, l.pricingModel, l.priceMicros, l.impressions,
    l.measuredImpressions, l.viewableImpressions, l.clicks, l.ivtImpressions, l.ivtClicks, l.duplicates, l.orphanClicks, l.spendMicros,
  ].map(csvField).join(','))
  return Buffer.from([EXPORT_COLUMNS.join(','), ...rows].join('\n') + '\n')
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const versionPrefix = (day: string, version: number) => `${day}/v${version}/`

export interface DayExportsOptions {
  snapshots: Pick<SnapshotStore, 'latestFinal' | 'lines' | 'versions'>
  /** The engine holding `<database>.billing_snapshots`; it writes the Parquet files. */
  clickhouse: ClickHouseClient
  database: string
  store: ObjectStore
}

export function createDayExports({ snapshots, clickhouse, database, store }: DayExportsOptions) {
  const inFlight = new Map<string, Promise<DayExport>>()

  /** One group's lines as Parquet, written by ClickHouse from the snapshot table (same filter and order as the CSV). */
  async function parquet(day: string, version: number, kind: ExportKind, id: string): Promise<Buffer> {
    const column = kind === 'advertiser' ? 'advertiser_id' : 'publisher_id'
    const cols = EXPORT_COLUMNS.map((c) => (c === 'pricing_model' ? 'CAST(pricing_model AS String) AS pricing_model' : c)).join(', ')
    const res = await clickhouse.exec({
      query: `SELECT ${cols} FROM ${database}.billing_snapshots
        WHERE day = {day:Date} AND version = {version:UInt32} AND campaign_id != '' AND ${column} = {id:String}
        ORDER BY campaign_id, publisher_id FORMAT Parquet`,
      query_params: { day, version, id },
    })
    const chunks: Buffer[] = []
    for await (const c of res.stream as AsyncIterable<Buffer | Uint8Array>) chunks.push(Buffer.from(c))
    return Buffer.concat(chunks)
  }

  async function write(v: SnapshotVersion): Promise<DayExport> {
    const lines = await snapshots.lines(v.day, v.version)
    const groups = new Map<string, { kind: ExportKind; id: string; lines: SnapshotLine[] }>()
    for (const l of lines) {
      for (const [kind, id] of [['advertiser', l.advertiserId], ['publisher', l.publisherId]] as const) {
        const key = `${kind}-${id}`
        let g = groups.get(key)
        if (!g) groups.set(key, (g = { kind, id, lines: [] }))
        g.lines.push(l)
      }
    }
    const files: ExportFile[] = []
    const prefix = versionPrefix(v.day, v.version)
    for (const [base, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const format of ['csv', 'parquet'] as const) {
        const body = format === 'csv' ? csv(v.day, v.version, g.lines) : await parquet(v.day, v.version, g.kind, g.id)
        const name = `${base}.${format}`
        await store.put(`${prefix}${name}`, body, { contentType: CONTENT_TYPES[format] })
        files.push({ name, kind: g.kind, id: g.id, format, rows: g.lines.length, bytes: body.length, sha256: sha256(body) })
      }
    }
    const manifest: DayExport = { format: MANIFEST_FORMAT, day: v.day, snapshotVersion: v.version, complete: v.complete, finalAt: v.createdAt, files }
    // Another replica published this version while these files were written: its manifest stands
    // (the version's manifest is put once; its files are the same bytes as these).
    const published = await manifestOf(v.day, v.version)
    if (published) return published
    // Published last: a version without its manifest has no files as far as any reader knows.
    await store.put(`${prefix}manifest.json`, Buffer.from(JSON.stringify(manifest)), { contentType: 'application/json' })
    return manifest
  }

  /** The published manifest of a version, or undefined when that version's files are not (yet) written. */
  async function manifestOf(day: string, version: number): Promise<DayExport | undefined> {
    const raw = await store.get(`${versionPrefix(day, version)}manifest.json`)
    if (!raw) return undefined
    const parsed = JSON.parse(raw.toString('utf8')) as Partial<DayExport>
    // An earlier layout's manifest (CSV only, no format field) does not list this version's files.
    return parsed.format === MANIFEST_FORMAT ? (parsed as DayExport) : undefined
  }

  /**
   * The files of the day's latest final version, written now if they are not yet; undefined before
   * the day's first close. Concurrent calls for one day share one write.
   */
  async function ensure(day: string): Promise<DayExport | undefined> {
    const latest = await snapshots.latestFinal(day)
    return latest ? publishVersion(latest) : undefined
  }

  /** A version's published manifest, or its files written and published now (one write per version at a time in this process). */
  async function publishVersion(v: SnapshotVersion): Promise<DayExport> {
    const published = await manifestOf(v.day, v.version)
    if (published) return published
    const flight = `${v.day}/${v.version}`
    let p = inFlight.get(flight)
    if (!p) {
      p = write(v).finally(() => inFlight.delete(flight))
      inFlight.set(flight, p)
    }
    return p
  }

  /**
   * Writes and publishes the files of final version `version` of `day` unless they are published
   * (the billing job's step after it stored the version). Undefined when no such final version exists.
   */
  async function publish(day: string, version: number): Promise<DayExport | undefined> {
    const v = (await snapshots.versions(day)).find((x) => x.version === version && x.status === 'final')
    return v ? publishVersion(v) : undefined
  }

  /** The object key of a listed file of a published version. */
  const keyOf = (exp: DayExport, file: ExportFile) => `${versionPrefix(exp.day, exp.snapshotVersion)}${file.name}`

  return { ensure, publish, manifest: manifestOf, keyOf }
}

export type DayExports = ReturnType<typeof createDayExports>
