import { join } from 'node:path'
import type { Config } from '../config.js'
import type { ProcessorDeps } from '../processor/processor.js'
import type { ClickHouseClient } from '@clickhouse/client'
import { lakeSetup } from '../sinks/iceberg-sink.js'
import { createLakeTable, type LakeTable } from './table.js'
import type { LakeUpkeepOptions } from './upkeep.js'

/** The processor's Iceberg settings from core's ICEBERG_* configuration. */
export function icebergDeps(config: Config, dataDir: string): Pick<ProcessorDeps, 'icebergDir' | 'iceberg'> {
  if (!config.ICEBERG_ENABLED) return {}
  const s3 = config.ICEBERG_S3_ENDPOINT
    ? { endpoint: config.ICEBERG_S3_ENDPOINT, accessKeyId: config.ICEBERG_S3_ACCESS_KEY_ID!, secretAccessKey: config.ICEBERG_S3_SECRET_ACCESS_KEY!, region: config.ICEBERG_S3_REGION }
    : undefined
  const common = { namespace: [config.ICEBERG_NAMESPACE], table: config.ICEBERG_TABLE, ...(s3 ? { s3 } : {}) }
  if (config.ICEBERG_CATALOG_URL) {
    const catalog = {
      url: config.ICEBERG_CATALOG_URL,
      ...(config.ICEBERG_CATALOG_TOKEN ? { token: config.ICEBERG_CATALOG_TOKEN } : {}),
      ...(config.ICEBERG_WAREHOUSE ? { location: config.ICEBERG_WAREHOUSE } : {}),
    }
    return { iceberg: { ...common, catalog } }
  }
  return { icebergDir: join(dataDir, 'iceberg'), iceberg: { ...common, ...(config.ICEBERG_WAREHOUSE ? { warehouse: config.ICEBERG_WAREHOUSE } : {}) } }
}

const MIB = 1024 * 1024

/** The scheduled upkeep's settings from ICEBERG_UPKEEP_* / ICEBERG_COMPACT_* / ICEBERG_CLEANUP_*; undefined when off. */
export function lakeUpkeepSettings(config: Config): Pick<LakeUpkeepOptions, 'intervalMs' | 'compaction' | 'cleanupMinAgeMs'> | undefined {
  if (!config.ICEBERG_ENABLED || !config.ICEBERG_UPKEEP_ENABLED) return undefined
  return {
    intervalMs: config.ICEBERG_UPKEEP_INTERVAL_MS,
    cleanupMinAgeMs: config.ICEBERG_CLEANUP_MIN_AGE_MS,
    compaction: {
      minFiles: config.ICEBERG_COMPACT_MIN_FILES,
      smallFileBytes: Math.round(config.ICEBERG_COMPACT_SMALL_FILE_MB * MIB),
      targetFileBytes: Math.round(config.ICEBERG_COMPACT_TARGET_FILE_MB * MIB),
    },
  }
}

/**
 * The lake table for core's own upkeep and privacy erasure (beside the processor's sink; commits of
 * both are optimistic, so they never overwrite each other). Undefined when ICEBERG_ENABLED=false.
 */
export async function openLake(config: Config, dataDir: string, client: ClickHouseClient): Promise<{ lake: LakeTable; close(): void } | undefined> {
  const deps = icebergDeps(config, dataDir)
  if (!deps.iceberg) return undefined
  const { catalog, io, location } = lakeSetup({ ...deps.iceberg, ...(deps.icebergDir ? { dir: deps.icebergDir } : {}) })
  const lake = createLakeTable({ client, catalog, io, ident: { namespace: deps.iceberg.namespace ?? ['adc'], name: deps.iceberg.table ?? 'events_raw' }, location, ...(deps.iceberg.s3 ? { s3: deps.iceberg.s3 } : {}) })
  try {
    await lake.open()
  } catch (err) {
    catalog.close?.()
    throw err
  }
  return { lake, close: () => catalog.close?.() }
}
