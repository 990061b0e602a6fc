/**
 * Test support: temporary directories made under the system's temp folder and removed together
 * (`afterAll(() => dirs.removeAll())`). Imported by tests only.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TempDirs {
  /** A new empty directory named `<prefix>XXXXXX`. */
  make(): string
  /** Removes every directory made so far. */
  removeAll(): void
}

export function tempDirs(prefix: string): TempDirs {
  const made: string[] = []
  return {
    make() {
      const d = mkdtempSync(join(tmpdir(), prefix))
      made.push(d)
      return d
    },
    removeAll() {
      for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
    },
  }
}
