import { join } from 'node:path'
import type { Config } from '../config.js'
import { createLocalObjectStore } from '../objects/local-store.js'
import type { ObjectStore } from '../objects/object-store.js'
import { createS3ObjectStore } from '../objects/s3-store.js'

export type ExportStoreConfig = Pick<
  Config,
  | 'EXPORTS_S3_BUCKET' | 'EXPORTS_S3_PREFIX' | 'EXPORTS_S3_ENDPOINT' | 'EXPORTS_S3_ACCESS_KEY_ID' | 'EXPORTS_S3_SECRET_ACCESS_KEY'
  | 'EXPORTS_S3_REGION' | 'EXPORTS_S3_PUBLIC_ENDPOINT' | 'ICEBERG_S3_ENDPOINT' | 'ICEBERG_S3_ACCESS_KEY_ID' | 'ICEBERG_S3_SECRET_ACCESS_KEY' | 'ICEBERG_S3_REGION'
>

/**
 * Where the reconcile export files live: S3 when EXPORTS_S3_BUCKET is set (endpoint, credentials and
 * region from EXPORTS_S3_*, else the lake's ICEBERG_S3_*), otherwise `<dataDir>/exports`.
 * loadConfig already refused a bucket without an endpoint or credentials.
 */
export function exportStoreFromConfig(config: ExportStoreConfig, dataDir: string): ObjectStore {
  if (!config.EXPORTS_S3_BUCKET) return createLocalObjectStore({ root: join(dataDir, 'exports') })
  const endpoint = config.EXPORTS_S3_ENDPOINT ?? config.ICEBERG_S3_ENDPOINT
  const accessKeyId = config.EXPORTS_S3_ACCESS_KEY_ID ?? config.ICEBERG_S3_ACCESS_KEY_ID
  const secretAccessKey = config.EXPORTS_S3_SECRET_ACCESS_KEY ?? config.ICEBERG_S3_SECRET_ACCESS_KEY
  if (!endpoint || !accessKeyId || !secretAccessKey) throw new RangeError('EXPORTS_S3_BUCKET needs an S3 endpoint and credentials')
  return createS3ObjectStore({
    s3: { endpoint, accessKeyId, secretAccessKey, region: config.EXPORTS_S3_REGION ?? config.ICEBERG_S3_REGION },
    bucket: config.EXPORTS_S3_BUCKET,
    prefix: config.EXPORTS_S3_PREFIX,
    ...(config.EXPORTS_S3_PUBLIC_ENDPOINT ? { publicEndpoint: config.EXPORTS_S3_PUBLIC_ENDPOINT } : {}),
  })
}
