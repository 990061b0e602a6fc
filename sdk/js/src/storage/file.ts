import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { QueueStorage } from './storage.js'

/**
 * Node store in one file, crash-safe: each snapshot goes to `<path>.tmp`, is fsynced, then renamed
 * over `<path>` (rename is atomic on POSIX file systems), so a process killed at any point leaves
 * the old or the new snapshot, never a torn one.
 */
export function fileStorage(path: string): QueueStorage {
  return {
    async read() {
      try {
        return await readFile(path, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
    },
    async write(snapshot) {
      await mkdir(dirname(path), { recursive: true })
      const tmp = `${path}.tmp`
      const handle = await open(tmp, 'w')
      try {
        await handle.writeFile(snapshot, 'utf8')
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(tmp, path)
    },
  }
}
