import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { createClickHouse } from '../clickhouse/client.js'
import { readAvroFile } from '../lake/avro.js'
import { createFileIO } from '../lake/io.js'
import { lakeReadsRowBinary } from '../lake/table.js'
import { currentSnapshotId } from '../lake/metadata.js'
import { lakeReader } from '../lake/restore.js'
import { eventsRowBinary } from './clickhouse-sink.js'
import { createIcebergSink } from './iceberg-sink.js'
import type { Sink, SinkBatch } from './sink.js'
import { batchOf, eventRow, runSinkContract } from '../testing/sink.contract.js'
import { useS3LakeEnv } from '../testing/s3-lake-env.js'
import { describeNeeding } from '../testing/needs.js'
import { s3Server } from '../testing/tools.js'

/**
 * The raw lake on S3 written through a ClickHouse server (the pinned version over its HTTP
 * interface): the server reads each batch's events_raw RowBinary as the request body (`input()`)
 * and writes the hour's Parquet files straight to the bucket (`s3()`), then reads their footers; the
 * processor keeps no row objects for it. Held to the sink contract, and to the files and rows the
 * row-object path (JSONEachRow through the same server) writes for the same events.
 */
describeNeeding('iceberg on S3 through a ClickHouse server', s3Server, () => {
  const env = useS3LakeEnv('adc-server-s3-', (dir) => createClickHouse({ url: process.env.ADC_TEST_CLICKHOUSE_URL!, dataDir: join(dir, 'client') }))
  const { q, dataDir } = env
  const s3 = () => env.s3()
  let n = 0

  /** The batch as the processor hands it to a lake it need not keep row objects for: RowBinary only. */
  const asRowBinary = (b: SinkBatch): SinkBatch => ({ ...b, events: [], eventsRowBinary: eventsRowBinary(b.events) })
  const rowBinaryOnly = (sink: Sink): Sink => ({ ...sink, write: (b, o) => sink.write(asRowBinary(b), o), probe: (b) => sink.probe!(asRowBinary(b)) })
  const newSink = async (name: string) => createIcebergSink({ client: env.ch, dir: join(dataDir, name), warehouse: `s3://warehouse/${name}`, s3: s3() })

  it('reads its rows from the RowBinary bytes on a server only for a table on S3', () => {
    expect(lakeReadsRowBinary(env.ch)).toBe(false)
    expect(lakeReadsRowBinary(env.ch, undefined, true)).toBe(true)
  })

  it('refuses rows handed over as RowBinary only when its table is not on S3, and commits nothing', async () => {
    const sink = await createIcebergSink({ client: env.ch, dir: join(dataDir, `local_${n++}`) })
    await expect(sink.write(asRowBinary(batchOf('ad-events', 1, 0, 4)), { recovering: false })).rejects.toThrow(/RowBinary only/)
    expect(currentSnapshotId(sink.lake.current()!.metadata)).toBeNull()
    await sink.close?.()
  })

  runSinkContract({
    name: 'iceberg on S3, data files written by a ClickHouse server from RowBinary',
    async newSink() {
      const sink = await newSink(`contract_${n++}`)
      const reader = lakeReader(sink.lake.current()!.metadata.location, s3())
      return {
        sink: rowBinaryOnly(sink),
        probe: {
          async eventTotals(partition) {
            // A table without a snapshot holds no rows (this engine's icebergS3 refuses to read one).
            if (currentSnapshotId(sink.lake.current()!.metadata) === null) return { events: 0, billable: 0 }
            const [r] = await q<{ events: number; billable: number }>(`SELECT sum(sign) AS events, sumIf(sign, billable = 1) AS billable FROM ${reader} WHERE log_partition = ${partition}`)
            return { events: Number(r!.events), billable: Number(r!.billable) }
          },
        },
      }
    },
  })

  describe('against the row-object path', () => {
    it.each([
      // Offsets 3590..3609 are ten seconds either side of 11:00: two hours, two data files.
      ['across two hours', 3590, 1, 2],
      // 0..28.5 h past 10:00, one event every 1.5 h: twenty files over two days, hours between them empty.
      ['across twenty hours of two days', 0, 5400, 20],
      ['within one hour, with a 20,000-character user agent (its bounds from a query)', 100, 1, 1, 'z'.repeat(20_000)],
    ] as const)('writes the same data files, bounds and rows: %s', async (_, first, step, files, longUa?: string) => {
      const rows = Array.from({ length: 20 }, (_, i) => eventRow(5, first + i * step, { ivt_reasons: i % 3 ? [] : ['ua_bot', 'burst'], ua: i === 7 && longUa ? longUa : i % 2 ? 'Mözilla ✓ 😀' : 'curl', ivt_score: i / 7, log_offset: 2 ** 40 + i }))
      const entries: Record<string, unknown[]> = {}
      const locations: Record<string, string> = {}
      for (const kind of ['objects', 'binary'] as const) {
        const name = `${kind}_${n++}`
        const sink = await newSink(name)
        const b = { ...batchOf('ad-events', 5, first, first + 19), events: rows }
        await sink.write(kind === 'binary' ? asRowBinary(b) : b, { recovering: false })
        const snapshot = sink.lake.current()!.metadata.snapshots![0]!
        expect([kind, snapshot.summary['added-data-files'], snapshot.summary['added-records']]).toEqual([kind, String(files), '20'])
        const io = createFileIO(s3())
        const [manifest] = readAvroFile(await io.read(snapshot['manifest-list'])).records as { manifest_path: string }[]
        entries[kind] = (readAvroFile(await io.read(manifest!.manifest_path)).records as { data_file: Record<string, unknown> }[])
          .map(({ data_file: { file_path, file_size_in_bytes, ...f } }) => {
            expect(String(file_path)).toMatch(new RegExp(`^s3://warehouse/${name}/.*/data/ts_hour=2026-11-2[34]-\\d\\d/[^/]+\\.parquet$`))
            expect(Number(file_size_in_bytes)).toBeGreaterThan(0)
            return f
          })
        locations[kind] = sink.lake.current()!.metadata.location
        await sink.close?.()
      }
      expect(entries.binary).toEqual(entries.objects)
      const read = async (kind: string) => q<Record<string, unknown>>(`SELECT * EXCEPT ivt_score, toFloat64(ivt_score) AS ivt_score FROM ${lakeReader(locations[kind]!, s3())} ORDER BY log_offset`)
      const objects = await read('objects')
      const binary = await read('binary')
      expect(objects).toHaveLength(20)
      const withoutScore = (rs: Record<string, unknown>[]) => rs.map(({ ivt_score, ...r }) => r)
      expect(withoutScore(binary)).toEqual(withoutScore(objects))
      // The Float32 as the processor computed it (the same bytes as events_raw's); this version's
      // text parser rounds some of the JSON path's values one step the other way.
      expect(binary.map((r) => r.ivt_score)).toEqual(rows.map((r) => Math.fround(r.ivt_score)))
      for (const [i, r] of objects.entries()) expect(Math.abs(Number(r.ivt_score) - Math.fround(rows[i]!.ivt_score))).toBeLessThan(1e-6)
    }, 60_000)
  })
})
