/**
 * Test support for the write side: a bare chDB engine (no migrations: the test runs them, on the
 * databases it names) in a temporary root directory, opened in `beforeAll` and closed, with the root
 * removed, in `afterAll`. chDB allows one data directory per process, so each test file makes one and
 * shares it between its tests; files run in separate workers and share nothing. Imported by tests only.
 * @example
 * const engine = useScratchEngine('adc-migrate-')
 * it('migrates', async () => { await migrate(engine.client, 'adc_test') })
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { createClickHouse, type ClickHouseClient } from '../clickhouse/client.js'

export interface ScratchEngine {
  /** The file's temporary directory (made at once; the engine's data is in `<root>/chdb`). */
  readonly root: string
  /** The engine; throws if read before `beforeAll` opened it. */
  readonly client: ClickHouseClient
}

/** Makes the root now and registers the hooks that open and close the engine in it. Call it at a file's (or a describe's) top level. */
export function useScratchEngine(tempPrefix: string): ScratchEngine {
  const root = mkdtempSync(join(tmpdir(), tempPrefix))
  let client: ClickHouseClient | undefined

  beforeAll(() => {
    client = createClickHouse({ dataDir: join(root, 'chdb') })
  })
  afterAll(async () => {
    await client?.close()
    rmSync(root, { recursive: true, force: true })
  })

  return {
    root,
    get client() {
      if (!client) throw new Error('scratch engine: client is read before beforeAll opened it')
      return client
    },
  }
}
