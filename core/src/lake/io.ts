import type { ReasonCode } from '@adc/schemas'
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { s3Fetch, type S3Options } from '../objects/s3.js'

export type { S3Options }

/** Reads and writes whole objects at absolute Iceberg locations (`file:///…` or `s3://bucket/key`). */
export interface FileIO {
  write(location: string, body: Buffer): Promise<void>
  read(location: string): Promise<Buffer>
  /** Removes an object; a missing one is not an error. */
  delete(location: string): Promise<void>
  /** Every object under a prefix (`file:///…/data/`, `s3://bucket/…/data/`), with its last-modified time. */
  list(prefix: string): Promise<StoredObject[]>
}

export interface StoredObject { location: string; modifiedMs: number }

export class LakeStorageError extends Error {
  readonly reason: ReasonCode = 'lake_storage_error'
}

/** Local files (`file://`) and, when configured, S3 (`s3://`), chosen per location. */
export function createFileIO(s3?: S3Options): FileIO {
  return {
    async write(location, body) {
      if (location.startsWith('s3://')) return s3Request(need(s3), 'PUT', location, body).then(() => undefined)
      const path = localPath(location)
      await mkdir(dirname(path), { recursive: true })
      // Whole file or nothing: readers never see a half-written manifest or metadata file.
      const tmp = `${path}.tmp-${process.pid}`
      await writeFile(tmp, body)
      await rename(tmp, path)
    },
    async read(location) {
      if (location.startsWith('s3://')) return s3Request(need(s3), 'GET', location)
      return readFile(localPath(location))
    },
    async delete(location) {
      if (location.startsWith('s3://')) return s3Request(need(s3), 'DELETE', location).then(() => undefined)
      await rm(localPath(location), { force: true })
    },
    async list(prefix) {
      if (prefix.startsWith('s3://')) return s3List(need(s3), prefix)
      const out: StoredObject[] = []
      const walk = async (dir: string): Promise<void> => {
        let entries
        try {
          entries = await readdir(dir, { withFileTypes: true })
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
          throw err
        }
        for (const e of entries) {
          const path = join(dir, e.name)
          if (e.isDirectory()) await walk(path)
          else if (e.isFile()) out.push({ location: pathToFileURL(path).href, modifiedMs: (await stat(path)).mtimeMs })
        }
      }
      await walk(localPath(prefix))
      return out
    },
  }
}

/** S3 ListObjectsV2 under a prefix, every page. */
async function s3List(s3: S3Options, prefix: string): Promise<StoredObject[]> {
  const m = /^(s3a?):\/\/([^/]+)\/(.*)$/.exec(prefix)
  if (!m) throw new RangeError(`not an s3 location: ${prefix}`)
  const out: StoredObject[] = []
  let token: string | undefined
  const text = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((x) => x[1]!)
  const unescape = (v: string) => v.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&')
  do {
    const query: Record<string, string> = { 'list-type': '2', prefix: m[3]!, ...(token ? { 'continuation-token': token } : {}) }
    const xml = (await s3Request(s3, 'GET', `${m[1]}://${m[2]}/`, undefined, query)).toString()
    for (const c of xml.split('<Contents>').slice(1)) {
      const key = unescape(text(c, 'Key')[0] ?? '')
      out.push({ location: `${m[1]}://${m[2]}/${key}`, modifiedMs: Date.parse(text(c, 'LastModified')[0] ?? '') })
    }
    token = text(xml, 'IsTruncated')[0] === 'true' ? unescape(text(xml, 'NextContinuationToken')[0] ?? '') : undefined
  } while (token)
  return out
}

function need(s3: S3Options | undefined): S3Options {
  if (!s3) throw new RangeError('an s3:// location needs S3 settings (ICEBERG_S3_ENDPOINT and credentials)')
  return s3
}

export function localPath(location: string): string {
  if (location.startsWith('file:')) return fileURLToPath(location)
  if (location.startsWith('/')) return location
  throw new RangeError(`not a local location: ${location}`)
}

/**
 * One path-style S3 request on an `s3://bucket/key` location (signing in objects/s3.ts); with a
 * query and an empty key it addresses the bucket itself (a ListObjectsV2 request).
 */
export async function s3Request(s3: S3Options, method: 'GET' | 'PUT' | 'DELETE', location: string, body?: Buffer, query: Record<string, string> = {}): Promise<Buffer> {
  const m = /^s3a?:\/\/([^/]+)\/(.*)$/.exec(location)
  if (!m || (m[2] === '' && Object.keys(query).length === 0)) throw new RangeError(`not an s3 location: ${location}`)
  const res = await s3Fetch(s3, method, { bucket: m[1]!, key: m[2]!, query, ...(body ? { body } : {}) })
  const out = Buffer.from(await res.arrayBuffer())
  if (!res.ok) throw new LakeStorageError(`S3 ${method} ${location}: ${res.status} ${out.toString().slice(0, 200)}`)
  return out
}
