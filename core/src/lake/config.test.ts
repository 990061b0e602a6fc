import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../config.js'
import { icebergDeps, lakeUpkeepSettings } from './config.js'

describe('ICEBERG_* configuration', () => {
  it('defaults to the embedded catalog under DATA_DIR', () => {
    expect(icebergDeps(loadConfig({}), '/d')).toEqual({ icebergDir: '/d/iceberg', iceberg: { namespace: ['adc'], table: 'events_raw' } })
  })

  it('uses the REST catalog, its warehouse and S3 when configured', () => {
    const deps = icebergDeps(loadConfig({
      ICEBERG_CATALOG_URL: 'http://iceberg-rest:8181', ICEBERG_WAREHOUSE: 's3://warehouse', ICEBERG_S3_ENDPOINT: 'http://minio:9000',
      ICEBERG_S3_ACCESS_KEY_ID: 'k', ICEBERG_S3_SECRET_ACCESS_KEY: 's',
    }), '/d')
    expect(deps).toEqual({
      iceberg: {
        namespace: ['adc'], table: 'events_raw',
        s3: { endpoint: 'http://minio:9000', accessKeyId: 'k', secretAccessKey: 's', region: 'us-east-1' },
        catalog: { url: 'http://iceberg-rest:8181', location: 's3://warehouse' },
      },
    })
  })

  it('is off with ICEBERG_ENABLED=false, and refuses an s3 warehouse without an endpoint', () => {
    expect(icebergDeps(loadConfig({ ICEBERG_ENABLED: 'false' }), '/d')).toEqual({})
    expect(() => loadConfig({ ICEBERG_WAREHOUSE: 's3://warehouse' })).toThrow(ConfigError)
  })

  it('schedules upkeep hourly by default; ICEBERG_UPKEEP_ENABLED=false turns it off', () => {
    expect(lakeUpkeepSettings(loadConfig({}))).toEqual({
      intervalMs: 3_600_000, cleanupMinAgeMs: 3_600_000,
      compaction: { minFiles: 10, smallFileBytes: 32 * 1024 * 1024, targetFileBytes: 128 * 1024 * 1024 },
    })
    expect(lakeUpkeepSettings(loadConfig({ ICEBERG_UPKEEP_INTERVAL_MS: '60000', ICEBERG_COMPACT_MIN_FILES: '4', ICEBERG_COMPACT_SMALL_FILE_MB: '8', ICEBERG_COMPACT_TARGET_FILE_MB: '64', ICEBERG_CLEANUP_MIN_AGE_MS: '0' }))).toEqual({
      intervalMs: 60_000, cleanupMinAgeMs: 0,
      compaction: { minFiles: 4, smallFileBytes: 8 * 1024 * 1024, targetFileBytes: 64 * 1024 * 1024 },
    })
    expect(lakeUpkeepSettings(loadConfig({ ICEBERG_UPKEEP_ENABLED: 'false' }))).toBeUndefined()
    expect(lakeUpkeepSettings(loadConfig({ ICEBERG_ENABLED: 'false' }))).toBeUndefined()
    expect(() => loadConfig({ ICEBERG_COMPACT_MIN_FILES: '1' })).toThrow(ConfigError)
  })
})
