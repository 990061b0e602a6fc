import type { ReasonCode } from '@adc/schemas'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseS3Location, s3Fetch, type S3Options } from '../objects/s3.js'

export type { S3Options }

/** Reads and writes whole objects at absolute Iceberg locations (`file:///…` or `s3://bucket/key`). */
export interface FileIO {
  write(location: string, body: Buffer): Promise<void>
  read(location: string): Promise<Buffer>
  /** Removes an object; a missing one is not an error. */
  delete(location: string): Promise<void>
}

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
  }
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

/** One path-style S3 request on an `s3://bucket/key` location (signing in objects/s3.ts). */
export async function s3Request(s3: S3Options, method: 'GET' | 'PUT' | 'DELETE', location: string, body?: Buffer): Promise<Buffer> {
  const { bucket, key } = parseS3Location(location)
  const res = await s3Fetch(s3, method, { bucket, key, ...(body ? { body } : {}) })
  const out = Buffer.from(await res.arrayBuffer())
  if (!res.ok) throw new LakeStorageError(`S3 ${method} ${location}: ${res.status} ${out.toString().slice(0, 200)}`)
  return out
}
