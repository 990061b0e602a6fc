import type { ReasonCode } from '@adc/schemas'

/**
 * Whole objects by key, in our words: `put` publishes an object all at once (a reader sees the
 * previous object or the new one, never part of it), `get`/`open`/`head` read it, `list` names what
 * is under a prefix. Keys are relative, `/`-separated, made of safe characters (KEY_PATTERN).
 * Adapters: a local directory (local-store.ts) and S3 (s3-store.ts); only main.ts chooses one.
 */
export interface ObjectStore {
  /** `local` or `s3`, for logs and the API's choice of URL. */
  readonly kind: 'local' | 's3'
  put(key: string, body: Buffer, options?: { contentType?: string }): Promise<void>
  /** The object's bytes, or undefined when there is none. */
  get(key: string): Promise<Buffer | undefined>
  /** The object as a stream with its size, or undefined when there is none. */
  open(key: string): Promise<{ body: ReadableStream<Uint8Array>; size: number } | undefined>
  head(key: string): Promise<{ size: number } | undefined>
  /** Objects whose key starts with `prefix` (a plain string prefix), sorted by key. */
  list(prefix: string): Promise<Array<{ key: string; size: number }>>
  /**
   * A URL that reads the object without other credentials until it expires, or undefined where the
   * store cannot sign one (a local directory: core serves the file itself).
   */
  signedUrl(key: string, expiresInSeconds: number, now?: number): string | undefined
}

/** 1-1024 characters of A-Z a-z 0-9 and `_ . : = - /`, no empty, `.` or `..` segment, no leading `/`. */
export const KEY_PATTERN = /^[A-Za-z0-9_.:=-]+(\/[A-Za-z0-9_.:=-]+)*$/

export function checkKey(key: string): string {
  if (key.length > 1024 || !KEY_PATTERN.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
    throw new RangeError(`not an object key: ${JSON.stringify(key)}`)
  }
  return key
}

/** The store itself failed (I/O, S3 refused or unreachable): the operation can be retried. */
export class ObjectStorageError extends Error {
  readonly reason: ReasonCode = 'object_storage_error'
  readonly retriable = true
}
