import { createHash, createHmac } from 'node:crypto'

/**
 * Path-style S3 requests signed with AWS Signature Version 4, shared by the Iceberg lake
 * (lake/io.ts) and the object store (objects/s3-store.ts). Signing follows "Authenticating Requests
 * (AWS Signature Version 4)" of the Amazon S3 API reference: header authentication for requests
 * core makes, query-string authentication for presigned GET URLs handed to clients.
 */
export interface S3Options {
  /** S3 API endpoint (`http://minio:9000`); path-style requests. */
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  /** @default 'us-east-1' */
  region?: string
}

export type S3Method = 'GET' | 'PUT' | 'DELETE' | 'HEAD'

/** The longest validity SigV4 allows a presigned URL (7 days, `X-Amz-Expires`). */
export const MAX_PRESIGN_SECONDS = 604_800

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex')
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest()

/** RFC 3986 percent-encoding as SigV4 requires it: everything but A-Z a-z 0-9 - _ . ~ */
export const uriEncode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
/** An object key as a path: each segment encoded, the slashes kept (S3 does not double-encode). */
export const encodeKey = (key: string) => key.split('/').map(uriEncode).join('/')

function objectUrl(endpoint: string, bucket: string, key: string | undefined): URL {
  return new URL(`${endpoint.replace(/\/$/, '')}/${bucket}${key === undefined ? '' : `/${encodeKey(key)}`}`)
}

/** Query parameters sorted by name, names and values encoded (the canonical query string). */
function canonicalQuery(query: Record<string, string>): string {
  return Object.keys(query).sort().map((k) => `${uriEncode(k)}=${uriEncode(query[k]!)}`).join('&')
}

function amzDate(now: number): string {
  return new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
}

function signingKey(s3: S3Options, day: string, region: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${s3.secretAccessKey}`, day), region), 's3'), 'aws4_request')
}

/** Splits `s3://bucket/key` (or `s3a://`) into bucket and key. */
export function parseS3Location(location: string): { bucket: string; key: string } {
  const m = /^s3a?:\/\/([^/]+)\/(.+)$/.exec(location)
  if (!m) throw new RangeError(`not an s3 location: ${location}`)
  return { bucket: m[1]!, key: m[2]! }
}

export interface S3RequestInit {
  bucket: string
  /** Omitted for bucket requests (ListObjectsV2). */
  key?: string
  query?: Record<string, string>
  body?: Buffer
  /** Epoch ms of the signature. @default Date.now() */
  now?: number
}

/** One signed request (header authentication); the caller reads status and body. */
export async function s3Fetch(s3: S3Options, method: S3Method, init: S3RequestInit): Promise<Response> {
  const url = objectUrl(s3.endpoint, init.bucket, init.key)
  const query = canonicalQuery(init.query ?? {})
  if (query) url.search = query
  const region = s3.region ?? 'us-east-1'
  const now = amzDate(init.now ?? Date.now())
  const day = now.slice(0, 8)
  const payloadHash = sha256(init.body ?? '')
  const headers: Record<string, string> = { host: url.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': now }
  const names = Object.keys(headers).sort()
  const canonical = [method, url.pathname, query, ...names.map((h) => `${h}:${headers[h]}`), '', names.join(';'), payloadHash].join('\n')
  const scope = `${day}/${region}/s3/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', now, scope, sha256(canonical)].join('\n')
  const signature = createHmac('sha256', signingKey(s3, day, region)).update(toSign).digest('hex')
  const { host: _host, ...sent } = headers
  return fetch(url, {
    method,
    headers: { ...sent, authorization: `AWS4-HMAC-SHA256 Credential=${s3.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}` },
    ...(init.body ? { body: new Uint8Array(init.body) } : {}),
  })
}

/**
 * A presigned GET URL (query-string authentication): anyone holding it can read the one object
 * until `expiresInSeconds` after `now`, and no longer; changing any part of it (key, expiry,
 * credential) breaks the signature. Only `host` is signed, so the URL works from any client.
 * `endpoint` is the address clients reach (it is part of the signature), by default the store's.
 */
export function presignS3Get(s3: S3Options, init: { bucket: string; key: string; expiresInSeconds: number; now?: number; endpoint?: string }): string {
  const seconds = Math.floor(init.expiresInSeconds)
  if (!(seconds >= 1 && seconds <= MAX_PRESIGN_SECONDS)) throw new RangeError(`a presigned URL expires within 1..${MAX_PRESIGN_SECONDS} seconds, not ${init.expiresInSeconds}`)
  const url = objectUrl(init.endpoint ?? s3.endpoint, init.bucket, init.key)
  const region = s3.region ?? 'us-east-1'
  const now = amzDate(init.now ?? Date.now())
  const day = now.slice(0, 8)
  const scope = `${day}/${region}/s3/aws4_request`
  const params: Record<string, string> = {
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${s3.accessKeyId}/${scope}`,
    'X-Amz-Date': now,
    'X-Amz-Expires': String(seconds),
    'X-Amz-SignedHeaders': 'host',
  }
  const query = canonicalQuery(params)
  const canonical = ['GET', url.pathname, query, `host:${url.host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n')
  const toSign = ['AWS4-HMAC-SHA256', now, scope, sha256(canonical)].join('\n')
  const signature = createHmac('sha256', signingKey(s3, day, region)).update(toSign).digest('hex')
  url.search = `${query}&X-Amz-Signature=${signature}`
  return url.toString()
}
