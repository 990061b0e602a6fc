import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, inject } from 'vitest'

/**
 * Per test file of the pinned-ClickHouse project: a ClickHouse HTTP interface on loopback over chDB
 * of the compose stack's ClickHouse version (scripts/clickhouse/http_stand_in.py), its own engine and
 * data directory. Core's code reaches it as it reaches a server (`CLICKHOUSE_URL`): the same SQL
 * text, settings and query parameters over HTTP.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..')
const dir = mkdtempSync(join(tmpdir(), 'adc-pinned-ch-'))
const child = spawn(inject('pinnedPython'), [join(root, 'scripts/clickhouse/http_stand_in.py'), join(dir, 'data')], { stdio: ['pipe', 'pipe', 'inherit'] })
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
process.env.ADC_TEST_CLICKHOUSE_URL = `http://127.0.0.1:${port}`
process.env.CLICKHOUSE_URL = `http://127.0.0.1:${port}`

afterAll(async () => {
  child.stdin!.end()
  const exited = new Promise((r) => child.once('exit', r))
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
  rmSync(dir, { recursive: true, force: true })
})
