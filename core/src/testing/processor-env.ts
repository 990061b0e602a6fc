/**
 * Test support for processor tests on one machine: a scratch engine (scratch-engine.ts), an embedded
 * log in the same root, and a local lake directory under `.cache` for the Iceberg sink, removed in
 * `afterAll` after the log is closed. One per test file, nothing shared. Imported by tests only.
 * @example
 * const env = useProcessorEnv('processor')
 * it('reads', async () => { await env.log.ensureTopic('ad-events', 4) })
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll } from 'vitest'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log } from '../log/log.js'
import { useScratchEngine, type ScratchEngine } from './scratch-engine.js'

export interface ProcessorEnv extends ScratchEngine {
  /** The embedded log in `<root>/log`; throws if read before `beforeAll` opened it. */
  readonly log: Log
  /** `.cache/test-lake-<name>-<pid>`: give `join(lakeDir, database)` as a processor's `icebergDir`. */
  readonly lakeDir: string
}

/** Registers the engine's hooks, then the log's; `name` names the root (`adc-<name>-`) and the lake directory. */
export function useProcessorEnv(name: string): ProcessorEnv {
  const engine = useScratchEngine(`adc-${name}-`)
  const lakeDir = join('.cache', `test-lake-${name}-${process.pid}`)
  let log: Log | undefined

  beforeAll(async () => {
    log = await createEmbeddedLog({ dir: join(engine.root, 'log'), logger: pino({ level: 'silent' }) })
  })
  afterAll(async () => {
    await log?.close()
    rmSync(lakeDir, { recursive: true, force: true })
  })

  return {
    root: engine.root,
    get client() { return engine.client },
    get log() {
      if (!log) throw new Error('processor env: log is read before beforeAll opened it')
      return log
    },
    lakeDir,
  }
}
