import { join } from 'node:path'
import type { Config } from '../config.js'
import type { ProcessorDeps } from '../processor/processor.js'

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
