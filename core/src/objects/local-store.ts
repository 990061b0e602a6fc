import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { Readable } from 'node:stream'
import { checkKey, ObjectStorageError, type ObjectStore } from './object-store.js'

/** Suffix of files being written; never listed or read as objects. */
const TMP = '.tmp-'

/** No such file, or a directory where a file was asked for: no object by that key. */
const missing = (err: unknown) => ['ENOENT', 'ENOTDIR', 'EISDIR'].includes((err as NodeJS.ErrnoException).code ?? '')

async function io<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err) {
    throw new ObjectStorageError(`${what}: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Objects as files under `root` (`<root>/<key>`). A put writes a temporary file beside the target
 * and renames it over the target (rename(2) is atomic within a file system), so a reader sees the
 * old file or the new one, never a partial one.
 * @example const store = createLocalObjectStore({ root: join(dataDir, 'exports') })
 */
export function createLocalObjectStore({ root }: { root: string }): ObjectStore {
  const path = (key: string) => join(root, checkKey(key))

  async function walk(dir: string, out: Array<{ key: string; size: number }>): Promise<void> {
    let entries
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (err) {
      if (missing(err)) return
      throw err
    }
    for (const e of entries) {
      const p = join(dir, e.name)
      if (e.isDirectory()) await walk(p, out)
      else if (e.isFile() && !e.name.includes(TMP)) out.push({ key: relative(root, p).split(sep).join('/'), size: (await stat(p)).size })
    }
  }

  async function head(key: string): Promise<{ size: number } | undefined> {
    const p = path(key)
    return io(`stat ${key}`, async () => {
      try {
        const s = await stat(p)
        return s.isFile() ? { size: s.size } : undefined
      } catch (err) {
        if (missing(err)) return undefined
        throw err
      }
    })
  }

  return {
    kind: 'local',
    async put(key, body) {
      const target = path(key)
      await io(`write ${key}`, async () => {
        await mkdir(dirname(target), { recursive: true })
        const tmp = `${target}${TMP}${process.pid}-${randomBytes(4).toString('hex')}`
        try {
          await writeFile(tmp, body)
          await rename(tmp, target)
        } catch (err) {
          await rm(tmp, { force: true })
          throw err
        }
      })
    },
    async get(key) {
      const p = path(key)
      return io(`read ${key}`, () => readFile(p).catch((err: unknown) => (missing(err) ? undefined : Promise.reject(err))))
    },
    async open(key) {
      const info = await head(key)
      if (!info) return undefined
      return { body: Readable.toWeb(createReadStream(path(key))) as ReadableStream<Uint8Array>, size: info.size }
    },
    head,
    async list(prefix) {
      if (prefix !== '' && !/^[A-Za-z0-9_.:=\/-]*$/.test(prefix)) throw new RangeError(`not a key prefix: ${JSON.stringify(prefix)}`)
      // Walk only the directory the prefix names (up to its last slash), then filter by the prefix.
      const cut = prefix.lastIndexOf('/')
      const base = cut < 0 ? '' : prefix.slice(0, cut)
      if (base.split('/').some((s) => s === '..' || s === '.')) throw new RangeError(`not a key prefix: ${JSON.stringify(prefix)}`)
      const out: Array<{ key: string; size: number }> = []
      await io(`list ${prefix}`, () => walk(base ? join(root, base) : root, out))
      return out.filter((o) => o.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    },
    signedUrl() {
      return undefined
    },
  }
}
