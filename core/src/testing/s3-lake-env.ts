/**
 * Test support for lake suites on S3: moto's S3 server on loopback with a `warehouse` bucket, a
 * ClickHouse client (chDB, or a server) and a scratch directory, opened in `beforeAll` and closed in
 * `afterAll` of the calling file. Imported by tests only.
 * @example
 * const env = useS3LakeEnv('adc-s3-sink-', (dir) => createClickHouse({ dataDir: dir }))
 * it('writes', async () => { await createIcebergSink({ client: env.ch, dir: join(env.dataDir, 't'), warehouse: 's3://warehouse/t', s3: env.s3() }) })
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClickHouseClient } from '@clickhouse/client'
import { afterAll, beforeAll } from 'vitest'
import type { S3Options } from '../lake/io.js'
import { startMoto } from './moto.js'

export interface S3LakeEnv {
  readonly ch: ClickHouseClient
  /** moto's endpoint (`http://127.0.0.1:<port>`). */
  readonly endpoint: string
  /** The S3 settings a lake on this server uses. */
  s3(): S3Options
  /** A scratch directory removed after the file's tests. */
  readonly dataDir: string
  /** A query's rows as JSON objects. */
  q<T>(query: string): Promise<T[]>
}

export function useS3LakeEnv(tempPrefix: string, openClient: (dataDir: string) => ClickHouseClient): S3LakeEnv {
  let moto: Awaited<ReturnType<typeof startMoto>> | undefined
  let ch: ClickHouseClient | undefined
  const dataDir = mkdtempSync(join(tmpdir(), tempPrefix))

  beforeAll(async () => {
    moto = await startMoto(['warehouse'])
    ch = openClient(dataDir)
  }, 60_000)

  afterAll(async () => {
    await ch?.close()
    moto?.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  const opened = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`${what} is opened in beforeAll`)
    return x
  }
  return {
    get ch() { return opened(ch, 'the ClickHouse client') },
    get endpoint() { return opened(moto, 'the S3 server').endpoint },
    s3() { return { endpoint: opened(moto, 'the S3 server').endpoint, accessKeyId: 'adc', secretAccessKey: 'adc_secret' } },
    dataDir,
    async q<T>(query: string): Promise<T[]> {
      return (await opened(ch, 'the ClickHouse client').query({ query, format: 'JSONEachRow' })).json<T>()
    },
  }
}
