import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..')

/** A running ClickHouse HTTP stand-in (scripts/clickhouse/http_stand_in.py): its URL and process. */
export interface ClickHouseStandIn {
  url: string
  pid: number
  /** CPU seconds the stand-in's process (all its threads: Python's HTTP side and the engine) used so far. */
  cpuSeconds(): number
  stop(): Promise<void>
}

/**
 * Starts the ClickHouse HTTP interface over chDB of the compose stack's ClickHouse version on
 * loopback, in its own process, with its data in `dataDir`; `python` is the venv's interpreter
 * (scripts/clickhouse/ensure.sh prints it). Core reaches it as it reaches a server (`CLICKHOUSE_URL`).
 */
export async function startClickHouseStandIn(python: string, dataDir: string): Promise<ClickHouseStandIn> {
  const child = spawn(python, [join(root, 'scripts/clickhouse/http_stand_in.py'), dataDir], { stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise<number>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('the ClickHouse stand-in did not start within 60 s')), 60_000)
    child.once('exit', (code) => fail(new Error(`the ClickHouse stand-in exited with ${code}`)))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^listening (\d+)$/.exec(line)
      if (m) {
        clearTimeout(timer)
        ok(Number(m[1]))
      }
    })
  })
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    cpuSeconds() {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return (Number(f[11]) + Number(f[12])) / 100
    },
    async stop() {
      child.stdin!.end()
      const exited = new Promise((r) => child.once('exit', r))
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    },
  }
}
