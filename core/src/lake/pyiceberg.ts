import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { promisify } from 'node:util'

/**
 * Test helper: pyiceberg (pinned, in the virtualenv scripts/iceberg/ensure.sh installs) driven
 * through scripts/iceberg/lake.py, to read and change the lake as a data engineer does.
 */
const repo = resolve(import.meta.dirname, '../../..')
export const PYTHON = resolve(repo, '.cache/iceberg/venv/bin/python')
const SCRIPT = resolve(repo, 'scripts/iceberg/lake.py')
export const pyicebergAvailable = existsSync(PYTHON)
const run = promisify(execFile)

export interface ScanResult {
  rows: Record<string, unknown>[]
  columns: string[]
  spec: { name: string; transform: string }[]
  snapshots: Record<string, string>[]
  location: string
  /** Data files the scan planned (after pruning by partition and column bounds), and in the table. */
  files: number
  total_files: number
}

/** Scans `adc.events_raw` through the lake's SQLite catalog (`root`) or a REST catalog (`rest`). */
export async function scanLake(where: { root: string } | { rest: string }, range?: { startMs: number; endMs: number }, filter?: string): Promise<ScanResult> {
  const args = [SCRIPT, 'scan', ...('root' in where ? ['--root', resolve(where.root)] : ['--rest', where.rest])]
  if (range) args.push('--start-ms', String(range.startMs), '--end-ms', String(range.endMs))
  if (filter) args.push('--filter', filter)
  const { stdout } = await run(PYTHON, args, { maxBuffer: 256 * 1024 * 1024, timeout: 50_000 })
  return JSON.parse(stdout) as ScanResult
}

/** Adds an optional string column with pyiceberg (schema evolution by another engine). */
export async function addColumnWithPyiceberg(root: string, name: string): Promise<void> {
  await run(PYTHON, [SCRIPT, 'add-column', '--root', resolve(root), '--name', name], { timeout: 50_000 })
}

/** Starts lake.py's REST catalog over `root` on a free loopback port. */
export async function startRestCatalog(root: string): Promise<{ url: string; stop(): void }> {
  const child: ChildProcess = spawn(PYTHON, [SCRIPT, 'rest-server', '--root', resolve(root)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error('REST catalog did not start')), 30_000)
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening (\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        res(m[1]!)
      }
    })
    child.once('exit', (code) => rej(new Error(`REST catalog exited with ${code}`)))
  })
  return { url, stop: () => child.kill('SIGTERM') }
}
