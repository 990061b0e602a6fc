import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { createIcebergSink } from '../sinks/iceberg-sink.js'
import { emptyBatch, type SinkBatch } from '../sinks/sink.js'
import { eventRow } from '../testing/sink.contract.js'
import { describeNeeding } from '../testing/needs.js'
import { pyiceberg } from '../testing/tools.js'
import { icebergEraser } from '../privacy/iceberg-eraser.js'
import { eraseSubject } from '../privacy/erase.js'
import { createPrivacyRetry, readPrivacyRequest } from '../privacy/retry.js'
import { readAvroFile } from './avro.js'
import { createSqlCatalog, type Catalog } from './catalog.js'
import { cleanUpTable, expireSnapshots } from './cleanup.js'
import { compactTable } from './compact.js'
import { createFileIO } from './io.js'
import { scanLake } from './pyiceberg.js'
import { lakeReader } from './restore.js'
import { LAKE_COLUMNS } from './schema.js'
import { createLakeTable } from './table.js'
import { createLakeUpkeep } from './upkeep.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { pino } from 'pino'

/**
 * Table care: compaction of small data files (a `replace` snapshot), clean-up of files no snapshot
 * reaches, and a privacy erasure that leaves none of the person's rows in storage. Every result is
 * read by chDB and by pyiceberg (the other engine). Lakes live under .cache/ (chDB's working dir).
 */
const root = mkdtempSync(join(tmpdir(), 'adc-upkeep-'))
const lakes = join('.cache', `test-upkeep-${process.pid}`)
let ch: ClickHouseClient
let n = 0
const q = async <T>(query: string): Promise<T[]> => (await ch.query({ query, format: 'JSONEachRow' })).json<T>()
const tableOf = (dir: string) => pathToFileURL(resolve(dir, 'warehouse/adc.db/events_raw')).href
const HOUR_10 = Date.UTC(2026, 10, 23, 10)

/** Batch k of a partition: 6 events, offsets 10k..10k+5, half in hour 10 and half in hour 11. */
function twoHourBatch(k: number, partition = 0, overrides: (o: number) => Partial<ReturnType<typeof eventRow>> = () => ({})): SinkBatch {
  const b = emptyBatch('ad-events', partition, 10 * k, 10 * k + 5)
  for (let o = 10 * k; o <= 10 * k + 5; o++) {
    const ts = HOUR_10 + (o % 2 === 0 ? 0 : 3_600_000) + o * 1000
    b.events.push(eventRow(partition, o, { ts, received_at: ts + 10, processed_at: ts + 20, sign: o % 5 === 0 ? -1 : 1, ...overrides(o) }))
  }
  return b
}

const expiryNow = { 'history.expire.max-snapshot-age-ms': '0', 'history.expire.min-snapshots-to-keep': '1' }

function filesUnder(dir: string, suffix: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name))
      else if (e.name.endsWith(suffix)) out.push(join(d, e.name))
    }
  }
  walk(dir)
  return out.sort()
}

async function chTotals(dir: string): Promise<{ n: number; sign: number; offsets: number }> {
  const [r] = await q<{ n: string; s: string; o: string }>(`SELECT count() n, sum(sign) s, sum(log_offset) o FROM ${lakeReader(tableOf(dir))}`)
  return { n: Number(r!.n), sign: Number(r!.s), offsets: Number(r!.o) }
}

/** Every Parquet file under `dir` read raw by chDB: total rows, and the files holding pub1's u_gone. */
async function rawFiles(dir: string): Promise<{ n: number; holding: string[] }> {
  const src = `file('${resolve(dir)}/**/*.parquet', Parquet)`
  const [r] = await q<{ n: string }>(`SELECT count() n FROM ${src} SETTINGS use_hive_partitioning = 0`)
  const holding = await q<{ p: string }>(`SELECT DISTINCT _path p FROM ${src} WHERE publisher_id = 'pub1' AND user_key = 'u_gone' SETTINGS use_hive_partitioning = 0`)
  return { n: Number(r!.n), holding: holding.map((h) => h.p).sort() }
}

beforeAll(() => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
})
afterAll(async () => {
  await ch.close()
  rmSync(root, { recursive: true, force: true })
  rmSync(lakes, { recursive: true, force: true })
})

describeNeeding('lake upkeep', pyiceberg, () => {
  describe('compaction', () => {
    it('rewrites each hour with many small files into one file in a replace snapshot; chDB and pyiceberg read the same rows and sums', async () => {
      const dir = join(lakes, `compact-${n++}`)
      const sink = await createIcebergSink({ client: ch, dir })
      for (let k = 0; k < 6; k++) await sink.write(twoHourBatch(k), { recovering: false })
      const before = await chTotals(dir)
      const scanBefore = await scanLake({ root: dir })
      expect(before.n).toBe(36)
      expect(scanBefore.total_files).toBe(12)

      const r = await compactTable(sink.lake, { minFiles: 4, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 })
      expect(r).toMatchObject({ partitions: 2, removedFiles: 12, addedFiles: 2 })

      expect(await chTotals(dir)).toEqual(before)
      const scan = await scanLake({ root: dir })
      expect(scan.total_files).toBe(2)
      expect(scan.rows.length).toBe(36)
      expect(scan.rows.reduce((s, row) => s + Number(row.sign), 0)).toBe(before.sign)
      expect(scan.rows.reduce((s, row) => s + Number(row.log_offset), 0)).toBe(before.offsets)
      expect(scan.rows.map((row) => row.event_key).sort()).toEqual(scanBefore.rows.map((row) => row.event_key).sort())
      const last = scan.snapshots[scan.snapshots.length - 1]!
      expect(last).toMatchObject({ operation: 'replace', 'deleted-data-files': '12', 'added-data-files': '2', 'total-data-files': '2', 'total-records': '36' })
      // Readers still prune by the compacted file's column bounds.
      const pruned = await scanLake({ root: dir }, { startMs: HOUR_10, endMs: HOUR_10 + 3_600_000 }, 'log_offset < 3')
      expect(pruned.rows.map((row) => Number(row.log_offset)).sort()).toEqual([0, 2])
      // The removed files are DELETED entries of the replace snapshot (per spec), the new one ADDED.
      const m = sink.lake.current()!.metadata
      const head = m.snapshots!.find((s) => String(s['snapshot-id']) === String(m['current-snapshot-id']))!
      const io = createFileIO()
      const entries = (await Promise.all(readAvroFile(await io.read(head['manifest-list'])).records.map(async (f) => readAvroFile(await io.read(String(f.manifest_path))).records))).flat()
      expect(entries.filter((e) => e.status === 2)).toHaveLength(12)
      expect(entries.filter((e) => e.status === 1)).toHaveLength(2)
      // A second run finds nothing left to do; appends still land on top.
      expect((await compactTable(sink.lake, { minFiles: 4, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 })).removedFiles).toBe(0)
      await sink.write(twoHourBatch(6), { recovering: false })
      expect((await chTotals(dir)).n).toBe(42)
    }, 90_000)

    it('compacts files from before and after a column was added: older rows keep reading null', async () => {
      const dir = join(lakes, `compact-evolved-${n++}`)
      const old = await createIcebergSink({ client: ch, dir, columns: LAKE_COLUMNS.filter((c) => c.name !== 'view_method') })
      for (let k = 0; k < 3; k++) await old.write(twoHourBatch(k), { recovering: false })
      const wide = await createIcebergSink({ client: ch, dir })
      for (let k = 3; k < 6; k++) await wide.write(twoHourBatch(k, 0, () => ({ view_method: 'mrc_50_1s' })), { recovering: false })
      expect((await compactTable(wide.lake, { minFiles: 4, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 })).addedFiles).toBe(2)
      const scan = await scanLake({ root: dir })
      expect(scan.total_files).toBe(2)
      const methods = (rows: { o: number; vm: unknown }[]) => rows.map((r) => [r.o, r.vm]).sort((a, b) => Number(a[0]) - Number(b[0]))
      const expected = scan.rows.map((r) => [Number(r.log_offset), Number(r.log_offset) < 30 ? null : 'mrc_50_1s'])
      expect(methods(scan.rows.map((r) => ({ o: Number(r.log_offset), vm: r.view_method })))).toEqual(expected.sort((a, b) => Number(a[0]) - Number(b[0])))
      const viaCh = await q<{ o: string; vm: string | null }>(`SELECT log_offset o, view_method vm FROM ${lakeReader(tableOf(dir))}`)
      expect(methods(viaCh.map((r) => ({ o: Number(r.o), vm: r.vm })))).toEqual(methods(scan.rows.map((r) => ({ o: Number(r.log_offset), vm: r.view_method }))))
    }, 90_000)

    it('a sink append committed while compaction commits is not lost: the compaction re-reads and re-applies', async () => {
      const dir = join(lakes, `concurrent-${n++}`)
      const sink = await createIcebergSink({ client: ch, dir })
      for (let k = 0; k < 4; k++) await sink.write(twoHourBatch(k), { recovering: false })
      const io = createFileIO()
      const inner = createSqlCatalog({ path: join(dir, 'catalog.db'), io })
      let raced = 0
      const racing: Catalog = {
        ...inner,
        async commit(id, base, req, upd) {
          const add = upd.find((u) => u.action === 'add-snapshot')
          if (add?.action === 'add-snapshot' && add.snapshot.summary.operation === 'replace' && raced++ === 0) {
            // The sink commits first; the compaction's base is now stale.
            await sink.write(twoHourBatch(4), { recovering: false })
          }
          return inner.commit(id, base, req, upd)
        },
      }
      const compactor = createLakeTable({ client: ch, catalog: racing, io, ident: { namespace: ['adc'], name: 'events_raw' }, location: tableOf(dir) })
      await compactor.open()
      const r = await compactTable(compactor, { minFiles: 3, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 })
      expect(raced).toBeGreaterThan(1)
      expect(r.removedFiles).toBe(8)
      expect(await chTotals(dir)).toMatchObject({ n: 30 })
      const scan = await scanLake({ root: dir })
      expect(scan.rows.length).toBe(30)
      // The two compacted files, plus the two the racing append added.
      expect(scan.total_files).toBe(4)
      expect(scan.snapshots.map((s) => s.operation)).toEqual(['append', 'append', 'append', 'append', 'append', 'replace'])
    }, 90_000)
  })

  describe('clean-up', () => {
    it('deletes data files, manifests and manifest lists no remaining snapshot reaches, keeps reachable and young ones', async () => {
      const dir = join(lakes, `cleanup-${n++}`)
      const sink = await createIcebergSink({ client: ch, dir, properties: { 'history.expire.min-snapshots-to-keep': '100' } })
      for (let k = 0; k < 5; k++) await sink.write(twoHourBatch(k), { recovering: false })
      await compactTable(sink.lake, { minFiles: 2, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 })
      const tableDir = join(dir, 'warehouse/adc.db/events_raw')
      expect(filesUnder(join(tableDir, 'data'), '.parquet')).toHaveLength(12)
      // A file a writer is still about to commit (young), and one a crashed writer left long ago.
      const young = join(tableDir, 'data/ts_hour=2026-11-23-10/young-orphan.parquet')
      const old = join(tableDir, 'data/ts_hour=2026-11-23-10/old-orphan.parquet')
      writeFileSync(young, 'x')
      writeFileSync(old, 'x')
      const past = new Date(Date.now() - 3 * 3_600_000)
      utimesSync(old, past, past)

      // Nothing expired yet: every compacted-away file is still reachable from an older snapshot.
      let r = await cleanUpTable(sink.lake, { minAgeMs: 0 })
      expect(r.deleted.map((l) => l.split('/').pop())).toEqual(['old-orphan.parquet', 'young-orphan.parquet'])
      writeFileSync(young, 'x')

      await sink.lake.refresh()
      const expired = await expireSnapshots(sink.lake, { properties: expiryNow })
      expect(expired).toHaveLength(5)
      // A reader that planned its scan on a snapshot current within the safety age still finds its files.
      r = await cleanUpTable(sink.lake, { minAgeMs: 3_600_000 })
      expect(r.deleted.filter((l) => l.endsWith('.parquet'))).toEqual([])
      expect(filesUnder(join(tableDir, 'data'), '.parquet')).toHaveLength(13)

      // Two hours later (the young orphan was written half an hour before then):
      const later = Date.now() + 2 * 3_600_000
      const youngTime = new Date(later - 1_800_000)
      utimesSync(young, youngTime, youngTime)
      r = await cleanUpTable(sink.lake, { minAgeMs: 3_600_000, now: later })
      // The ten small files and the expired snapshots' manifest lists and manifests are gone; the young orphan stays.
      expect(r.deleted.filter((l) => l.endsWith('.parquet'))).toHaveLength(10)
      expect(r.deleted.some((l) => /\/metadata\/snap-/.test(l))).toBe(true)
      expect(r.deleted.some((l) => /-adc-m0\.avro$/.test(l))).toBe(true)
      const left = filesUnder(join(tableDir, 'data'), '.parquet').map((f) => f.split('/').pop())
      expect(left).toContain('young-orphan.parquet')
      expect(left).toHaveLength(3)
      // Every file the remaining snapshot reaches is still there, and both engines read every row.
      const scan = await scanLake({ root: dir })
      expect(scan.rows.length).toBe(30)
      expect(scan.total_files).toBe(2)
      expect((await chTotals(dir)).n).toBe(30)
      for (const f of filesUnder(join(tableDir, 'metadata'), '.avro')) expect(statSync(f).size).toBeGreaterThan(0)
      // The young orphan goes once it is old enough.
      r = await cleanUpTable(sink.lake, { minAgeMs: 0, now: later })
      expect(r.deleted.map((l) => l.split('/').pop())).toEqual(['young-orphan.parquet'])
    }, 90_000)
  })

  describe('privacy erasure', () => {
    it("rewrites the files with the subject's rows, expires the snapshots that reached them and deletes them: gone from storage, other rows intact", async () => {
      const dir = join(lakes, `erase-${n++}`)
      const sink = await createIcebergSink({ client: ch, dir })
      // The subject: user_key u_gone at pub1; the same user key at another publisher is someone else.
      const subject = (o: number) => (o % 4 === 1 ? { user_key: 'u_gone' } : o % 4 === 3 ? { user_key: 'u_gone', publisher_id: 'pub2' } : {})
      for (let k = 0; k < 4; k++) await sink.write(twoHourBatch(k, 0, subject), { recovering: false })
      await sink.write(twoHourBatch(4), { recovering: false })
      const scanBefore = await scanLake({ root: dir })
      const victims = scanBefore.rows.filter((row) => row.user_key === 'u_gone' && row.publisher_id === 'pub1')
      expect(victims.length).toBe(6)

      const dataDir = join(dir, 'warehouse/adc.db/events_raw/data')
      const before = await rawFiles(dataDir)
      expect(before.holding).toHaveLength(4)
      const eraser = icebergEraser(sink.lake)
      expect(eraser.name).toBe('iceberg')
      expect(await eraser.erase({ publisherId: 'pub1', userKey: 'u_gone' })).toBe('done')

      const scan = await scanLake({ root: dir })
      expect(scan.rows.filter((row) => row.user_key === 'u_gone' && row.publisher_id === 'pub1')).toEqual([])
      const kept = scanBefore.rows.filter((row) => !(row.user_key === 'u_gone' && row.publisher_id === 'pub1'))
      expect(scan.rows.map((row) => row.event_key).sort()).toEqual(kept.map((row) => row.event_key).sort())
      expect(scan.rows.filter((row) => row.publisher_id === 'pub2')).toHaveLength(6)
      expect(scan.snapshots.map((s) => s.operation)).toEqual(['overwrite'])
      // Every Parquet file left in storage, read raw: none holds the subject, and together they hold exactly the live rows.
      const after = await rawFiles(dataDir)
      expect({ n: after.n, gone: after.holding.length }).toEqual({ n: kept.length, gone: 0 })
      for (const p of before.holding) expect(existsSync(p)).toBe(false)
      // Manifests left name a file that held the subject only as the overwrite's DELETED entry, with no column bounds
      // (the old manifests, whose bounds held the subject's values, are deleted).
      const held = new Set(before.holding.map((p) => pathToFileURL(p).href))
      const named = []
      for (const f of filesUnder(join(dir, 'warehouse/adc.db/events_raw/metadata'), '.avro').filter((f) => !f.split('/').pop()!.startsWith('snap-'))) {
        for (const e of readAvroFile(readFileSync(f)).records as { status: number; data_file: { file_path: string; lower_bounds?: unknown; upper_bounds?: unknown } }[]) {
          if (held.has(e.data_file.file_path)) named.push([e.status, e.data_file.lower_bounds ?? null, e.data_file.upper_bounds ?? null])
        }
      }
      expect(named).toEqual(before.holding.map(() => [2, null, null]))
      expect((await chTotals(dir)).n).toBe(kept.length)
      // The sink still appends on top; an erasure with nothing to erase is done at once.
      await sink.write(twoHourBatch(5), { recovering: false })
      expect(await eraser.erase({ publisherId: 'pub9', ipHash: 'ffff' })).toBe('done')
      expect((await scanLake({ root: dir })).rows.length).toBe(kept.length + 6)
    }, 90_000)
    it('an erasure that fails is recorded as pending, the table left as it was', async () => {
      const dir = join(lakes, `erase-failed-${n++}`)
      const sink = await createIcebergSink({ client: ch, dir })
      await sink.write(twoHourBatch(0, 0, () => ({ user_key: 'u_gone' })), { recovering: false })
      const io = createFileIO()
      const inner = createSqlCatalog({ path: join(dir, 'catalog.db'), io })
      const down: Catalog = { ...inner, commit: async () => { throw new Error('catalog unreachable') } }
      const lake = createLakeTable({ client: ch, catalog: down, io, ident: { namespace: ['adc'], name: 'events_raw' }, location: tableOf(dir) })
      await lake.open()
      expect(await icebergEraser(lake).erase({ publisherId: 'pub1', userKey: 'u_gone' })).toBe('pending')
      expect((await scanLake({ root: dir })).rows.length).toBe(6)
      expect(filesUnder(join(dir, 'warehouse/adc.db/events_raw/data'), '.parquet')).toHaveLength(2)
    }, 90_000)

    it('after a compaction, also deletes the small files with the rows that only older snapshots still reach', async () => {
      const dir = join(lakes, `erase-compacted-${n++}`)
      const sink = await createIcebergSink({ client: ch, dir })
      for (let k = 0; k < 4; k++) await sink.write(twoHourBatch(k, 0, (o) => (o % 4 === 1 ? { user_key: 'u_gone' } : {})), { recovering: false })
      await compactTable(sink.lake, { minFiles: 3, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 })
      const dataDir = join(dir, 'warehouse/adc.db/events_raw/data')
      const before = await rawFiles(dataDir)
      // The compacted hour-11 file and the four small ones it replaced (still reachable from older snapshots).
      expect(before.holding).toHaveLength(5)
      expect(await icebergEraser(sink.lake).erase({ publisherId: 'pub1', userKey: 'u_gone' })).toBe('done')
      // None left in storage; hour 10's replaced small files (no rows of the subject) wait for clean-up.
      expect(await rawFiles(dataDir)).toEqual({ n: 12 + 6 + 12, holding: [] })
      await cleanUpTable(sink.lake, { minAgeMs: 0 })
      expect(await rawFiles(dataDir)).toEqual({ n: 18, holding: [] })
      const scan = await scanLake({ root: dir })
      expect(scan.rows.length).toBe(18)
      expect(scan.snapshots.map((s) => s.operation)).toEqual(['overwrite'])
    }, 90_000)
  })

  describe('scheduled upkeep', () => {
    it('runs compaction, expiry and clean-up only on the lease holder, and counts its runs', async () => {
      const dir = join(lakes, `job-${n++}`)
      const sink = await createIcebergSink({ client: ch, dir, properties: expiryNow })
      for (let k = 0; k < 4; k++) await sink.write(twoHourBatch(k), { recovering: false })
      let held = false
      const registry = createMetricsRegistry({ defaultMetrics: false })
      const job = createLakeUpkeep({
        lake: sink.lake, intervalMs: 60_000, lease: { held: () => held }, logger: pino({ level: 'silent' }), registry,
        compaction: { minFiles: 3, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 }, cleanupMinAgeMs: 0,
      })
      expect(await job.runOnce()).toEqual({ status: 'skipped' })
      expect(filesUnder(join(dir, 'warehouse/adc.db/events_raw/data'), '.parquet')).toHaveLength(8)
      held = true
      const r = await job.runOnce()
      expect(r).toMatchObject({ status: 'ok', compaction: { removedFiles: 8, addedFiles: 2 } })
      // The compacted-away files went with the expired snapshots.
      expect(filesUnder(join(dir, 'warehouse/adc.db/events_raw/data'), '.parquet')).toHaveLength(2)
      expect((await scanLake({ root: dir })).rows.length).toBe(24)
      expect(await registry.getSingleMetricAsString('adc_lake_upkeep_runs_total')).toMatch(/adc_lake_upkeep_runs_total\{result="ok"\} 1/)
    }, 90_000)

    it("retries a privacy erasure recorded as pending: done after one run, the subject's rows gone from the lake, completion recorded", async () => {
      await migrate(ch, 'adc')
      const dir = join(lakes, `erase-retry-${n++}`)
      const sink = await createIcebergSink({ client: ch, dir })
      for (let k = 0; k < 2; k++) await sink.write(twoHourBatch(k, 0, (o) => (o % 4 === 1 ? { user_key: 'u_gone' } : o % 4 === 3 ? { user_key: 'u_gone', publisher_id: 'pub2' } : {})), { recovering: false })
      const dataDir = join(dir, 'warehouse/adc.db/events_raw/data')
      expect((await rawFiles(dataDir)).holding.length).toBeGreaterThan(0)
      // The request's own erasure fails (the catalog is down): its audit row says pending.
      const io = createFileIO()
      const down: Catalog = { ...createSqlCatalog({ path: join(dir, 'catalog.db'), io }), commit: async () => { throw new Error('catalog unreachable') } }
      const downLake = createLakeTable({ client: ch, catalog: down, io, ident: { namespace: ['adc'], name: 'events_raw' }, location: tableOf(dir) })
      await downLake.open()
      const logger = pino({ level: 'silent' })
      const audit = await eraseSubject({ client: ch, database: 'adc', erasers: [icebergEraser(downLake)] }, { publisherId: 'pub1', userKey: 'u_gone' }, { requestedBy: 'admin_demo', now: Date.now() })
      expect(audit.external).toEqual({ clickhouse: 'done', iceberg: 'pending' })
      expect((await readPrivacyRequest({ client: ch, database: 'adc' }, audit.requestId))?.external).toEqual({ clickhouse: 'done', iceberg: 'pending' })

      const job = createLakeUpkeep({
        lake: sink.lake, intervalMs: 60_000, logger, compaction: { minFiles: 100, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 }, cleanupMinAgeMs: 3_600_000,
        privacy: createPrivacyRetry({ client: ch, database: 'adc', erasers: [icebergEraser(sink.lake)], logger }),
      })
      expect(await job.runOnce()).toMatchObject({ status: 'ok', erasures: { retried: 1, done: 1, pending: 0 } })
      // Gone from every file in storage; the other publisher's same user key stays.
      expect((await rawFiles(dataDir)).holding).toEqual([])
      const [left] = await q<{ n: string }>(`SELECT count() n FROM ${lakeReader(tableOf(dir))} WHERE publisher_id = 'pub2' AND user_key = 'u_gone'`)
      expect(Number(left!.n)).toBe(3)
      const status = await readPrivacyRequest({ client: ch, database: 'adc' }, audit.requestId)
      expect(status).toMatchObject({ requestId: audit.requestId, external: { clickhouse: 'done', iceberg: 'done' } })
      expect(status!.completedAt).toBeGreaterThan(0)
      // The audit row itself is kept as written (append-only); the next run has nothing to retry.
      const rows = await q<{ n: string }>(`SELECT count() n FROM adc.privacy_requests WHERE request_id = '${audit.requestId}' AND external['iceberg'] = 'pending'`)
      expect(Number(rows[0]!.n)).toBe(1)
      expect(await job.runOnce()).toMatchObject({ status: 'ok', erasures: { retried: 0, done: 0, pending: 0 } })
    }, 90_000)
  })
})
