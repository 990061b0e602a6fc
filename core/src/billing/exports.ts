import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { SnapshotLine, SnapshotStore } from './snapshots.js'

/**
 * Export files of a closed day: one CSV per advertiser and one per publisher with the lines of the
 * day's latest final snapshot version, kept in a local directory (`<dir>/<day>/v<version>/`, with a
 * manifest), written once per version. Object storage (S3) is not wired yet: the same layout would
 * be the bucket's key prefix.
 */
export interface ExportFile {
  name: string
  kind: 'advertiser' | 'publisher'
  id: string
  format: 'csv'
  rows: number
  bytes: number
  sha256: string
}

export interface DayExport {
  day: string
  snapshotVersion: number
  files: ExportFile[]
}

const COLUMNS = [
  'day', 'version', 'advertiser_id', 'campaign_id', 'publisher_id', 'pricing_model', 'price_micros', 'impressions',
  'measured_impressions', 'viewable_impressions', 'clicks', 'ivt_impressions', 'ivt_clicks', 'duplicates', 'orphan_clicks', 'spend_micros',
] as const

/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
function field(v: string | number): string {
  const s = String(v)
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

function csv(day: string, version: number, lines: SnapshotLine[]): string {
  const rows = lines.map((l) => [
    day, version, l.advertiserId, l.campaignId, l.publisherId, l.pricingModel, l.priceMicros, l.impressions,
    l.measuredImpressions, l.viewableImpressions, l.clicks, l.ivtImpressions, l.ivtClicks, l.duplicates, l.orphanClicks, l.spendMicros,
  ].map(field).join(','))
  return [COLUMNS.join(','), ...rows].join('\n') + '\n'
}

/** A file name this module can have written: `advertiser-<id>.csv` or `publisher-<id>.csv` with an id of ID_PATTERN. */
export const EXPORT_FILE_NAME = /^(advertiser|publisher)-([A-Za-z0-9_.:-]{1,128})\.csv$/

export function createDayExports(options: { snapshots: Pick<SnapshotStore, 'latestFinal' | 'lines'>; dir: string }) {
  const versionDir = (day: string, version: number) => join(options.dir, day, `v${version}`)

  /** The export of the day's latest final version (written now if it is not yet); undefined before the first close. */
  async function ensure(day: string): Promise<DayExport | undefined> {
    const latest = await options.snapshots.latestFinal(day)
    if (!latest) return undefined
    const dir = versionDir(day, latest.version)
    const manifest = join(dir, 'manifest.json')
    if (existsSync(manifest)) return JSON.parse(readFileSync(manifest, 'utf8')) as DayExport
    const lines = await options.snapshots.lines(day, latest.version)
    const groups = new Map<string, { kind: 'advertiser' | 'publisher'; id: string; lines: SnapshotLine[] }>()
    for (const l of lines) {
      for (const [kind, id] of [['advertiser', l.advertiserId], ['publisher', l.publisherId]] as const) {
        const name = `${kind}-${id}.csv`
        let g = groups.get(name)
        if (!g) groups.set(name, (g = { kind, id, lines: [] }))
        g.lines.push(l)
      }
    }
    mkdirSync(dir, { recursive: true })
    const files: ExportFile[] = []
    for (const [name, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const text = csv(day, latest.version, g.lines)
      writeFileSync(join(dir, name), text)
      files.push({ name, kind: g.kind, id: g.id, format: 'csv', rows: g.lines.length, bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') })
    }
    const out: DayExport = { day, snapshotVersion: latest.version, files }
    // The manifest last, by rename: a listed file is always complete.
    writeFileSync(`${manifest}.tmp`, JSON.stringify(out))
    renameSync(`${manifest}.tmp`, manifest)
    return out
  }

  /** The content of one listed file of the day's latest export, or undefined. */
  async function read(day: string, name: string): Promise<string | undefined> {
    if (!EXPORT_FILE_NAME.test(name)) return undefined
    const exp = await ensure(day)
    if (!exp || !exp.files.some((f) => f.name === name)) return undefined
    return readFileSync(join(versionDir(day, exp.snapshotVersion), name), 'utf8')
  }

  return { ensure, read }
}
