import { checkKey, ObjectStorageError, type ObjectStore } from './object-store.js'
import { presignS3Get, s3Fetch, type S3Method, type S3Options, type S3RequestInit } from './s3.js'

export interface S3ObjectStoreOptions {
  s3: S3Options
  bucket: string
  /** Key prefix inside the bucket (`exports/`); keys given to the store are below it. @default '' */
  prefix?: string
  /** Endpoint written into presigned URLs, as clients reach the store (`http://127.0.0.1:9000`). @default s3.endpoint */
  publicEndpoint?: string
  /** Keys per ListObjectsV2 page (S3's maximum is 1000). @default 1000 */
  listPageSize?: number
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }
const unxml = (s: string) => s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => XML_ENTITIES[e]!)

/**
 * Objects in an S3 bucket (path-style, SigV4): MinIO in compose, any S3 API. A PUT is atomic on
 * S3 (an object is visible whole once the PUT succeeds), which is the publish step.
 * @example const store = createS3ObjectStore({ s3: { endpoint, accessKeyId, secretAccessKey }, bucket: 'warehouse', prefix: 'exports/' })
 */
export function createS3ObjectStore(options: S3ObjectStoreOptions): ObjectStore {
  const { s3, bucket } = options
  const prefix = options.prefix ?? ''
  if (prefix !== '') {
    if (!prefix.endsWith('/')) throw new RangeError(`an S3 key prefix ends with "/": ${JSON.stringify(prefix)}`)
    checkKey(prefix.slice(0, -1))
  }
  const pageSize = options.listPageSize ?? 1000
  const full = (key: string) => `${prefix}${checkKey(key)}`

  async function call(method: S3Method, init: Omit<S3RequestInit, 'bucket'>, okMissing = false): Promise<Response | undefined> {
    let res: Response
    try {
      res = await s3Fetch(s3, method, { bucket, ...init })
    } catch (err) {
      throw new ObjectStorageError(`S3 ${method} ${bucket}/${init.key ?? ''}: ${(err as Error).message}`, { cause: err })
    }
    if (okMissing && res.status === 404) {
      await res.body?.cancel()
      return undefined
    }
    if (!res.ok) {
      const text = method === 'HEAD' ? '' : (await res.text()).slice(0, 300)
      throw new ObjectStorageError(`S3 ${method} ${bucket}/${init.key ?? ''}: ${res.status} ${text}`)
    }
    return res
  }

  return {
    kind: 's3',
    async put(key, body) {
      const res = await call('PUT', { key: full(key), body })
      await res?.body?.cancel()
    },
    async get(key) {
      const res = await call('GET', { key: full(key) }, true)
      return res ? Buffer.from(await res.arrayBuffer()) : undefined
    },
    async open(key) {
      const res = await call('GET', { key: full(key) }, true)
      if (!res || !res.body) return undefined
      return { body: res.body, size: Number(res.headers.get('content-length') ?? 0) }
    },
    async head(key) {
      const res = await call('HEAD', { key: full(key) }, true)
      return res ? { size: Number(res.headers.get('content-length') ?? 0) } : undefined
    },
    async list(sub) {
      const out: Array<{ key: string; size: number }> = []
      let token: string | undefined
      do {
        const query: Record<string, string> = { 'list-type': '2', prefix: `${prefix}${sub}`, 'max-keys': String(pageSize) }
        if (token) query['continuation-token'] = token
        const xml = await (await call('GET', { query }))!.text()
        for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
          const key = unxml(/<Key>([\s\S]*?)<\/Key>/.exec(m[1]!)?.[1] ?? '')
          out.push({ key: key.slice(prefix.length), size: Number(/<Size>(\d+)<\/Size>/.exec(m[1]!)?.[1] ?? 0) })
        }
        token = /<IsTruncated>true<\/IsTruncated>/.test(xml) ? unxml(/<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml)?.[1] ?? '') || undefined : undefined
      } while (token)
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    },
    signedUrl(key, expiresInSeconds, now) {
      return presignS3Get(s3, { bucket, key: full(key), expiresInSeconds, ...(now !== undefined ? { now } : {}), ...(options.publicEndpoint ? { endpoint: options.publicEndpoint } : {}) })
    },
  }
}
