import { chTime } from '@adc/schemas'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { pino } from 'pino'
import { classifyDay } from '../billing/final-join.js'
import { buildLines } from '../billing/snapshots.js'
import { createClickHouse, migrate, sqlString, type ClickHouseClient } from '../clickhouse/client.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { trafficMix } from '../testing/events.js'
import { describeNeeding } from '../testing/needs.js'
import { createProcessor, type Processor } from '../processor/processor.js'
import { eventsRowBinary } from '../sinks/clickhouse-sink.js'
import { createIcebergSink } from '../sinks/iceberg-sink.js'
import { batchOf, eventRow, runSinkContract } from '../testing/sink.contract.js'
import { pyiceberg } from '../testing/tools.js'
import { addColumnWithPyiceberg, scanLake, startRestCatalog } from './pyiceberg.js'
import { lakeReader, replaceDayFromLake, restoreDayFromLake } from './restore.js'
import { createSqlCatalog, type Catalog } from './catalog.js'
import { readAvroFile } from './avro.js'
import { createFileIO } from './io.js'
import { CommitConflictError } from './metadata.js'
import { LAKE_COLUMNS } from './schema.js'
import { createLakeTable } from './table.js'

/**
 * The raw-event lake as its readers see it: pyiceberg (pinned, scripts/iceberg/ensure.sh) scans what
 * the processor wrote and finds events_raw's rows; chDB reads it too; schema evolution keeps old files
 * readable; the REST catalog protocol commits with optimistic concurrency; billing replays a day.
 * chDB reads Iceberg only under its working directory, so the lakes live under .cache/.
 */
const root = mkdtempSync(join(tmpdir(), 'adc-lake-'))
const lakes = join('.cache', `test-lake-${process.pid}`)
let ch: ClickHouseClient
let n = 0
const q = async <T>(query: string): Promise<T[]> => (await ch.query({ query, format: 'JSONEachRow' })).json<T>()
const tableOf = (dir: string) => pathToFileURL(resolve(dir, 'warehouse/adc.db/events_raw')).href

beforeAll(() => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
})
afterAll(async () => {
  await ch.close()
  rmSync(root, { recursive: true, force: true })
  rmSync(lakes, { recursive: true, force: true })
})

runSinkContract({
  name: 'iceberg (Iceberg v2 table in the SQLite catalog)',
  async newSink() {
    const dir = join(lakes, `contract-${n++}`)
    const sink = await createIcebergSink({ client: ch, dir })
    return {
      sink,
      probe: {
        async eventTotals(partition) {
          const [r] = await q<{ events: number; billable: number }>(`SELECT sum(sign) AS events, sumIf(sign, billable = 1) AS billable FROM ${lakeReader(tableOf(dir))} WHERE log_partition = ${partition}`)
          return { events: Number(r!.events), billable: Number(r!.billable) }
        },
      },
    }
  },
})

describe('lake commits', () => {
  it('records the batch range in the snapshot summary and skips a replay after a restart', async () => {
    const dir = join(lakes, `replay-${n++}`)
    const first = await createIcebergSink({ client: ch, dir })
    await first.write(batchOf('ad-events', 3, 10, 19), { recovering: false })
    await first.close?.()
    const restarted = await createIcebergSink({ client: ch, dir })
    await restarted.write(batchOf('ad-events', 3, 10, 19), { recovering: true })
    await restarted.write(batchOf('ad-events', 3, 20, 24), { recovering: false })
    const snaps = restarted.lake.current()!.metadata.snapshots!
    expect(snaps.map((s) => [s.summary['adc.log-topic'], s.summary['adc.log-partition'], s.summary['adc.log-min-offset'], s.summary['adc.log-max-offset'], s.summary['added-records']])).toEqual([
      ['ad-events', '3', '10', '19', '10'],
      ['ad-events', '3', '20', '24', '5'],
    ])
    const [r] = await q<{ n: number }>(`SELECT count() n FROM ${lakeReader(tableOf(dir))}`)
    expect(Number(r!.n)).toBe(15)
  })
  it.each([
    // Offsets 3590..3609 are ten seconds either side of 11:00: two hours, two data files.
    ['across two hours (bounds from each Parquet footer)', 3590, 1, 2],
    ['within one hour (bounds from the Parquet footer)', 100, 1, 1],
    // 0..9500 s past 10:00: three hours, each file's bounds from its footer.
    ['across three hours (one pass over the bytes, bounds from each footer)', 0, 500, 3],
    // 0..28.5 h past 10:00, one event every 1.5 h (late events): twenty files, each its own hour.
    ['across twenty hours', 0, 5400, 20],
    // A value too long for the Parquet writer's column statistics: that column's bounds from a query.
    ['with a 20,000-character user agent', 100, 1, 1, 'z'.repeat(20_000)],
  ] as const)('encodes the Parquet from the batch\'s RowBinary bytes with the schema, rows and bounds of the row objects: %s', async (_, first, step, files, longUa?: string) => {
    const rows = Array.from({ length: 20 }, (_, i) => eventRow(5, first + i * step, { ivt_reasons: i % 3 ? [] : ['ua_bot', 'burst'], ua: i === 7 && longUa ? longUa : i % 2 ? 'Mözilla ✓ 😀' : 'curl', ivt_score: i / 7, log_offset: 2 ** 40 + i }))
    const dirs = { text: join(lakes, `text-${n++}`), binary: join(lakes, `binary-${n++}`) }
    const entries: Record<string, unknown[]> = {}
    for (const [kind, dir] of Object.entries(dirs)) {
      const sink = await createIcebergSink({ client: ch, dir })
      // The bytes alone (no row objects), as the processor hands them on chDB.
      const b = kind === 'binary' ? { ...batchOf('ad-events', 5, first, first + 19), events: [], eventsRowBinary: eventsRowBinary(rows) } : { ...batchOf('ad-events', 5, first, first + 19), events: rows }
      await sink.probe!(b)
      await sink.write(b, { recovering: false })
      const snapshot = sink.lake.current()!.metadata.snapshots![0]!
      expect([kind, snapshot.summary['added-data-files'], snapshot.summary['added-records']]).toEqual([kind, String(files), '20'])
      const io = createFileIO()
      const [manifest] = readAvroFile(await io.read(snapshot['manifest-list'])).records as { manifest_path: string }[]
      // Column bounds and counts per file, as readers use them to skip files (paths differ).
      entries[kind] = (readAvroFile(await io.read(manifest!.manifest_path)).records as { data_file: Record<string, unknown> }[])
        .map(({ data_file: { file_path, file_size_in_bytes, ...f } }) => f)
    }
    expect(entries.binary).toEqual(entries.text)
    const schemaOf = async (dir: string) => (await q<{ name: string; type: string }>(`DESCRIBE TABLE file(${sqlString(`${dir}/warehouse/adc.db/events_raw/data/*/*.parquet`)}, Parquet) SETTINGS use_hive_partitioning = 0`)).map(({ name, type }) => ({ name, type }))
    const text = await schemaOf(dirs.text)
    expect(text.map((c) => c.name)).toEqual(LAKE_COLUMNS.map((c) => c.name))
    expect(await schemaOf(dirs.binary)).toEqual(text)
    const read = async (dir: string) => q<Record<string, unknown>>(`SELECT _path LIKE '%ts_hour=2026-11-23-10/%' AS first_hour, * FROM file(${sqlString(`${dir}/warehouse/adc.db/events_raw/data/*/*.parquet`)}, Parquet) ORDER BY _path, log_offset SETTINGS use_hive_partitioning = 0`)
    const textRows = await read(dirs.text)
    expect(textRows.map((r) => Number(r.first_hour))).toEqual(rows.map((r) => (r.ts < Date.UTC(2026, 10, 23, 11) ? 1 : 0)).sort((a, b) => b - a))
    expect(new Set(textRows.map((r) => r.log_offset)).size).toBe(20)
    expect(await read(dirs.binary)).toEqual(textRows)
    // Written as Iceberg writers default: no bloom filters (ClickHouse writes one per column unless told).
    const blooms = await q<{ bytes: string }>(`SELECT sum(arraySum(arrayMap(g -> arraySum(arrayMap(c -> c.bloom_filter_bytes, g.columns)), row_groups))) AS bytes FROM file(${sqlString(`${dirs.binary}/warehouse/adc.db/events_raw/data/*/*.parquet`)}, ParquetMetadata)`)
    expect(Number(blooms[0]!.bytes)).toBe(0)
  })

  it('a commit whose answer was lost is found by its snapshot id, not written twice', async () => {
    const dir = join(lakes, `lost-${n++}`)
    const io = createFileIO()
    const inner = createSqlCatalog({ path: join(dir, 'catalog.db'), io })
    let lose = true
    const flaky: Catalog = {
      ...inner,
      async commit(id, base, req, upd) {
        const r = await inner.commit(id, base, req, upd)
        if (upd.some((u) => u.action === 'add-snapshot') && lose) {
          lose = false
          throw new Error('connection reset after the commit landed')
        }
        return r
      },
    }
    const table = createLakeTable({ client: ch, catalog: flaky, io, ident: { namespace: ['adc'], name: 'events_raw' }, location: tableOf(dir) })
    await table.open()
    expect((await table.append(batchOf('ad-events', 0, 0, 9))).status).toBe('committed')
    expect((await table.append(batchOf('ad-events', 0, 0, 9), { refresh: true })).status).toBe('already')
    expect(table.current()!.metadata.snapshots).toHaveLength(1)
  })

  it('gives up with lake_commit_conflict when every attempt conflicts', async () => {
    const dir = join(lakes, `conflict-${n++}`)
    const io = createFileIO()
    const inner = createSqlCatalog({ path: join(dir, 'catalog.db'), io })
    const busy: Catalog = {
      ...inner,
      async commit(id, base, req, upd) {
        if (upd.some((u) => u.action === 'add-snapshot')) throw new CommitConflictError('another writer won')
        return inner.commit(id, base, req, upd)
      },
    }
    const table = createLakeTable({ client: ch, catalog: busy, io, ident: { namespace: ['adc'], name: 'events_raw' }, location: tableOf(dir), maxAttempts: 3 })
    await table.open()
    await expect(table.append(batchOf('ad-events', 0, 0, 4))).rejects.toMatchObject({ reason: 'lake_commit_conflict' })
  })
})

const EVENTS_RAW_SELECT = LAKE_COLUMNS.map((c) => (c.type === 'timestamptz' ? `toUnixTimestamp64Milli(${c.name}) AS ${c.name}` : c.name)).join(', ')

/** One row in a form both readers agree on (Float32 compared as Float32). */
function canon(r: Record<string, unknown>): string {
  return JSON.stringify(LAKE_COLUMNS.map((c) => {
    const v = r[c.name]
    if (c.type === 'float') return Math.fround(Number(v))
    if (c.type === 'list<string>') return v
    return c.type === 'string' ? String(v) : Number(v)
  }))
}

describeNeeding('lake readers', pyiceberg, () => {
  describe('lake readers', () => {
    const dir = join(lakes, 'processor')
    const db = 'adc_lake_proc'
    let processor: Processor

    beforeAll(async () => {
      await migrate(ch, db)
      const log = await createEmbeddedLog({ dir: join(root, 'log'), logger: pino({ level: 'silent' }) })
      await log.ensureTopic('ad-events', 2)
      await log.ensureTopic('edge-stats', 1)
      // Two hours (the second mix crosses 13:00) and two days, so hour partitions and the day filter both matter.
      const a = trafficMix(600, { start: Date.UTC(2026, 10, 23, 12, 59, 50), seed: 1 })
      const b = trafficMix(300, { start: Date.UTC(2026, 10, 22, 23, 59, 57), seed: 2 })
      const records = [...a.records, ...b.records]
      await log.append('ad-events', records)
      processor = createProcessor({
        log, clickhouse: ch, database: db, stateDir: join(root, 'state'), groupId: 'g-lake',
        logger: pino({ level: 'silent' }), registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords: 200, icebergDir: dir,
      })
      await processor.start()
      // Every batch writes the lake's files and commits its table: on a loaded machine that takes a while.
      const deadline = Date.now() + 100_000
      for (;;) {
        const parts = processor.status().topics['ad-events'] ?? {}
        if (Object.values(parts).reduce((s, p) => s + p.applied + 1, 0) >= records.length) break
        if (Date.now() > deadline) throw new Error(`processor did not catch up in 100 s: ${JSON.stringify(parts)}`)
        await new Promise((r) => setTimeout(r, 50))
      }
      await processor.stop()
      await log.close()
    }, 120_000)

    it('pyiceberg scans exactly the rows of events_raw for the same hours, with the same values', async () => {
      const range = { startMs: Date.UTC(2026, 10, 23, 12), endMs: Date.UTC(2026, 10, 23, 14) }
      const scan = await scanLake({ root: dir }, range)
      const raw = await q<Record<string, unknown>>(`SELECT ${EVENTS_RAW_SELECT} FROM (SELECT * FROM ${db}.events_raw WHERE ts >= '${chTime(range.startMs)}' AND ts < '${chTime(range.endMs)}')`)
      expect(raw.length).toBe(600)
      expect(scan.rows.map(canon).sort()).toEqual(raw.map(canon).sort())
      expect(scan.columns).toEqual(LAKE_COLUMNS.map((c) => c.name))
      expect(scan.spec).toEqual([{ name: 'ts_hour', transform: 'hour' }])
      expect(scan.location).toMatch(/^file:\/\/\//)
      // Every snapshot names its log range; the ranges of a partition never overlap.
      for (const s of scan.snapshots) expect(s).toMatchObject({ operation: 'append', 'adc.log-topic': 'ad-events' })
    }, 60_000)

    it('readers skip data files by the column bounds in the manifests', async () => {
      const scan = await scanLake({ root: dir }, undefined, "log_partition = 0 AND log_offset < 5 AND campaign_id >= 'cmp'")
      const raw = await q<Record<string, unknown>>(`SELECT ${EVENTS_RAW_SELECT} FROM (SELECT * FROM ${db}.events_raw WHERE log_partition = 0 AND log_offset < 5)`)
      expect(scan.rows.map(canon).sort()).toEqual(raw.map(canon).sort())
      expect(scan.files).toBe(1)
      expect(scan.total_files).toBeGreaterThan(4)
    }, 60_000)

    it('chDB reads the same table through icebergLocal, found through the catalog file', async () => {
      const [row] = await q<{ loc: string }>(`SELECT metadata_location AS loc FROM sqlite('${join(dir, 'catalog.db')}', 'iceberg_tables') WHERE table_namespace = 'adc' AND table_name = 'events_raw'`)
      expect(row!.loc.startsWith(`${tableOf(dir)}/metadata/`)).toBe(true)
      const [lake] = await q<{ n: number; s: number }>(`SELECT count() n, sum(sign) s FROM ${lakeReader(tableOf(dir))}`)
      const [raw] = await q<{ n: number; s: number }>(`SELECT count() n, sum(sign) s FROM ${db}.events_raw`)
      expect({ n: Number(lake!.n), s: Number(lake!.s) }).toEqual({ n: Number(raw!.n), s: Number(raw!.s) })
    })

    it('a billing day replayed from the lake gives the same snapshot as from events_raw', async () => {
      const tenants = { getCampaign: (id: string) => ({ id, advertiserId: 'adv_lake', name: id, pricing: { model: 'cpm' as const, priceMicros: 2_000_000 } }) } as unknown as Parameters<typeof buildLines>[1]
      for (const day of ['2026-11-22', '2026-11-23']) {
        // The documented rebuild: a fresh database, the day restored from the lake, the billing job on it.
        const replay = `adc_lake_replay_${day.replaceAll('-', '')}`
        await migrate(ch, replay)
        const { rows } = await restoreDayFromLake(ch, { reader: lakeReader(tableOf(dir)), database: replay, day })
        expect(rows).toBeGreaterThan(0)
        const fromRaw = await classifyDay(ch, { database: db, day })
        const fromLake = await classifyDay(ch, { database: replay, day })
        expect(fromRaw.length).toBeGreaterThan(0)
        expect(fromLake).toEqual(fromRaw)
        expect(buildLines(fromLake, tenants)).toEqual(buildLines(fromRaw, tenants))
        // In place (the day's partition dropped and reloaded) gives the same again.
        await replaceDayFromLake(ch, { reader: lakeReader(tableOf(dir)), database: replay, day })
        expect(await classifyDay(ch, { database: replay, day })).toEqual(fromRaw)
      }
    }, 60_000)
  })

  describe('schema evolution', () => {
    it('a column added later (by the writer or by pyiceberg) keeps older files readable', async () => {
      const dir = join(lakes, `evolve-${n++}`)
      const narrow = LAKE_COLUMNS.filter((c) => c.name !== 'view_method')
      const old = await createIcebergSink({ client: ch, dir, columns: narrow })
      await old.write(batchOf('ad-events', 0, 0, 4), { recovering: false })
      const wide = await createIcebergSink({ client: ch, dir })
      const next = batchOf('ad-events', 0, 5, 9)
      for (const e of next.events) e.view_method = 'mrc_50_1s'
      await wide.write(next, { recovering: false })
      await addColumnWithPyiceberg(dir, 'note')
      // The writer's cached metadata is now stale: its commit conflicts, reloads and lands on top.
      await wide.write(batchOf('ad-events', 0, 10, 11), { recovering: false })

      const scan = await scanLake({ root: dir })
      expect(scan.columns).toEqual([...narrow.map((c) => c.name), 'view_method', 'note'])
      const byOffset = new Map(scan.rows.map((r) => [Number(r.log_offset), r]))
      expect(byOffset.size).toBe(12)
      expect(byOffset.get(0)).toMatchObject({ view_method: null, note: null, event_id: 'e0' })
      expect(byOffset.get(7)).toMatchObject({ view_method: 'mrc_50_1s', note: null })
      expect(byOffset.get(11)).toMatchObject({ view_method: '', note: null })
      const viaCh = await q<{ o: number; vm: string | null }>(`SELECT log_offset o, view_method vm FROM ${lakeReader(tableOf(dir))} ORDER BY o`)
      expect(viaCh.map((r) => [Number(r.o), r.vm])).toEqual([...Array(12).keys()].map((o) => [o, o < 5 ? null : o < 10 ? 'mrc_50_1s' : '']))
    }, 60_000)
  })

  describe('table upkeep', () => {
    it('merges small manifests and expires old snapshots at commit; a replay is still recognised and every row stays readable', async () => {
      const dir = join(lakes, `upkeep-${n++}`)
      const sink = await createIcebergSink({
        client: ch, dir,
        properties: { 'commit.manifest.min-count-to-merge': '3', 'history.expire.max-snapshot-age-ms': '0', 'history.expire.min-snapshots-to-keep': '2', 'write.metadata.previous-versions-max': '3' },
      })
      for (let o = 0; o < 40; o += 5) await sink.write(batchOf('ad-events', 0, o, o + 4), { recovering: false })
      // The first batch's snapshot has expired: the partition's watermark still marks it committed.
      await sink.write(batchOf('ad-events', 0, 0, 4), { recovering: true })
      const m = sink.lake.current()!.metadata
      expect(m.snapshots).toHaveLength(2)
      expect(m.properties['adc.log-committed.ad-events.0']).toBe('39')
      const head = m.snapshots!.find((s) => String(s['snapshot-id']) === String(m['current-snapshot-id']))!
      const manifests = readAvroFile(await createFileIO().read(head['manifest-list'])).records
      expect(manifests.length).toBeLessThan(4)
      expect(manifests.reduce((a, r) => a + Number(r.added_files_count) + Number(r.existing_files_count), 0)).toBe(8)

      // Expired snapshots' manifest lists and metadata files beyond write.metadata.previous-versions-max are deleted.
      const metaDir = join(dir, 'warehouse/adc.db/events_raw/metadata')
      expect(readdirSync(metaDir).filter((f) => f.startsWith('snap-'))).toHaveLength(2)
      expect(readdirSync(metaDir).filter((f) => f.endsWith('.metadata.json')).length).toBe(4)

      const scan = await scanLake({ root: dir })
      expect(scan.rows.map((r) => Number(r.log_offset)).sort((a, b) => a - b)).toEqual([...Array(40).keys()])
      const [r] = await q<{ n: number }>(`SELECT count() n FROM ${lakeReader(tableOf(dir))}`)
      expect(Number(r!.n)).toBe(40)
    }, 60_000)
  })

  describe('REST catalog', () => {
    it('commits through the REST protocol with optimistic concurrency; pyiceberg reads through the same catalog', async () => {
      const dir = resolve(lakes, `rest-${n++}`)
      const rest = await startRestCatalog(dir)
      try {
        const location = pathToFileURL(resolve(dir, 'warehouse')).href
        const upkeep = { 'commit.manifest.min-count-to-merge': '2', 'history.expire.max-snapshot-age-ms': '0', 'history.expire.min-snapshots-to-keep': '2' }
        const a = await createIcebergSink({ client: ch, catalog: { url: rest.url, location }, properties: upkeep })
        const b = await createIcebergSink({ client: ch, catalog: { url: rest.url, location } })
        // Two writers commit at once: one of them conflicts (409), reloads and commits on top.
        await Promise.all([a.write(batchOf('ad-events', 1, 0, 9), { recovering: false }), b.write(batchOf('ad-events', 2, 0, 9), { recovering: false })])
        await b.write(batchOf('ad-events', 1, 0, 9), { recovering: true })
        await a.write(batchOf('ad-events', 1, 10, 14), { recovering: false })
        const scan = await scanLake({ rest: rest.url })
        expect(scan.rows.length).toBe(25)
        // Expiry and merging go through the REST protocol too (remove-snapshots; a merged manifest).
        expect(scan.snapshots).toHaveLength(2)
        expect(scan.snapshots.map((s) => s['adc.log-min-offset'])).toContain('10')
        expect(scan.location).toBe(`${location}/adc/events_raw`)
      } finally {
        rest.stop()
      }
    }, 60_000)
  })
})
