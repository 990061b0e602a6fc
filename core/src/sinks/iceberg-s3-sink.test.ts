import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { createClickHouse, migrate } from '../clickhouse/client.js'
import { lakeReader } from '../lake/restore.js'
import { createIcebergSink } from './iceberg-sink.js'
import { batchOf, runSinkContract } from '../testing/sink.contract.js'
import { cleanUpTable } from '../lake/cleanup.js'
import { compactTable } from '../lake/compact.js'
import { eraseFromLake } from '../lake/erase.js'
import { useS3LakeEnv } from '../testing/s3-lake-env.js'
import { describeNeeding } from '../testing/needs.js'
import { s3Server } from '../testing/tools.js'

/**
 * The raw lake on S3-compatible object storage: data files, manifests and metadata written as S3
 * objects (SigV4), read back by chDB's icebergS3 through the same sink contract as the local table. The S3 endpoint is a real
 * S3-API server on loopback (moto's standalone server, installed by scripts/s3/ensure.sh: MinIO
 * itself is not in a registry CI reaches). npm test installs it when python3 is present; in CI a
 * missing server fails, elsewhere the suite skips.
 */
describeNeeding('iceberg on S3', s3Server, () => {
  const env = useS3LakeEnv('adc-s3-sink-', (dir) => createClickHouse({ dataDir: dir }))
  const { q, dataDir } = env
  let n = 0

  runSinkContract({
    name: 'iceberg (Iceberg v2 table on an S3 API server)',
    async newSink() {
      const db = `adc_s3_${n++}`
      await migrate(env.ch, db)
      const s3 = env.s3()
      // Expiry and metadata clean-up on every commit, so S3 DELETE is exercised too.
      const properties = { 'write.metadata.previous-versions-max': '1', 'history.expire.max-snapshot-age-ms': '0', 'history.expire.min-snapshots-to-keep': '1' }
      const sink = await createIcebergSink({ client: env.ch, dir: join(dataDir, db), warehouse: `s3://warehouse/${db}`, s3, properties })
      const reader = lakeReader(sink.lake.current()!.metadata.location, s3)
      return {
        sink,
        probe: {
          async eventTotals(partition) {
            const [r] = await q<{ events: number; billable: number }>(`SELECT sum(sign) AS events, sumIf(sign, billable = 1) AS billable FROM ${reader} WHERE log_partition = ${partition}`)
            return { events: Number(r!.events), billable: Number(r!.billable) }
          },
        },
      }
    },
  })

  describe('iceberg on S3', () => {
    it('stores Parquet data files and Iceberg metadata as objects in the bucket', async () => {
      const list = await (await fetch(`${env.endpoint}/warehouse?list-type=2`)).text()
      expect(list).toMatch(/events_raw\/metadata\/[^<]*\.metadata\.json/)
      expect(list).toMatch(/events_raw\/metadata\/snap-[^<]*\.avro/)
      expect(list).toMatch(/events_raw\/data\/ts_hour=2026-11-23-10\/[^<]*\.parquet/)
      // Per table: the current metadata file and one previous; one live manifest list (the rest deleted).
      const table = (t: string) => [...list.matchAll(new RegExp(`<Key>adc_s3_1/adc\\.db/events_raw/metadata/([^<]*)</Key>`, 'g'))].map((m) => m[1]!).filter((k) => k.endsWith(t))
      expect(table('.metadata.json')).toHaveLength(2)
      expect(table('.avro').filter((k) => k.startsWith('snap-'))).toHaveLength(1)
    })

    it('compacts, cleans up and erases a subject on S3: objects deleted, chDB reads the rest', async () => {
      const s3 = env.s3()
      const db = `adc_s3_care_${n++}`
      const properties = { 'history.expire.max-snapshot-age-ms': '0', 'history.expire.min-snapshots-to-keep': '1' }
      const sink = await createIcebergSink({ client: env.ch, dir: join(dataDir, db), warehouse: `s3://warehouse/${db}`, s3, properties })
      for (let k = 0; k < 4; k++) await sink.write(batchOf('ad-events', 0, 5 * k, 5 * k + 4), { recovering: false })
      const parquet = async () => [...(await (await fetch(`${env.endpoint}/warehouse?list-type=2&prefix=${db}/`)).text()).matchAll(/<Key>([^<]*\/data\/[^<]*\.parquet)<\/Key>/g)].map((m) => m[1]!)
      expect(await parquet()).toHaveLength(4)
      expect(await compactTable(sink.lake, { minFiles: 3, smallFileBytes: 1 << 20, targetFileBytes: 64 << 20 })).toMatchObject({ removedFiles: 4, addedFiles: 1 })
      await cleanUpTable(sink.lake, { minAgeMs: 0 })
      expect(await parquet()).toHaveLength(1)
      const reader = lakeReader(sink.lake.current()!.metadata.location, s3)
      const count = async (where = '1') => Number((await q<{ n: string }>(`SELECT count() n FROM ${reader} WHERE ${where}`))[0]!.n)
      expect(await count()).toBe(20)

      expect(await eraseFromLake(sink.lake, { publisherId: 'pub1', column: 'user_key', value: 'u3' })).toMatchObject({ status: 'done', rows: 3 })
      expect(await count()).toBe(17)
      expect(await count("user_key = 'u3'")).toBe(0)
      const files = await parquet()
      expect(files).toHaveLength(1)
      const raw = await q<{ n: string; u3: string }>(`SELECT count() n, countIf(user_key = 'u3') u3 FROM s3('${env.endpoint}/warehouse/${files[0]}', 'adc', 'adc_secret', 'Parquet')`)
      expect(raw.map((r) => [Number(r.n), Number(r.u3)])).toEqual([[17, 0]])
    }, 60_000)
  })
})
