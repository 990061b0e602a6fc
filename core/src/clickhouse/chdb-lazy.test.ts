import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * chDB's native library is mapped only into a process that uses embedded ClickHouse: with a server
 * (CLICKHOUSE_URL) core imports and creates its client without it, so it starts where no chDB build
 * exists (arm64 Linux) and in an image built without it. Checked in a fresh process, by whether
 * libchdb.so is in its memory maps after importing core's whole module graph.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const dir = mkdtempSync(join(tmpdir(), 'adc-chdb-lazy-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function mapsLibchdb(options: string): boolean {
  const script = `
    import { readFileSync } from 'node:fs'
    await import('./core/src/main.ts')
    const { createClickHouse } = await import('./core/src/clickhouse/client.ts')
    const client = createClickHouse(${options})
    process.stdout.write(JSON.stringify({ libchdb: readFileSync('/proc/self/maps', 'utf8').includes('libchdb') }))
    await client.close()
    process.exit(0)
  `
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  return (JSON.parse(out) as { libchdb: boolean }).libchdb
}

describe.runIf(process.platform === 'linux')('chDB loading', () => {
  it('never maps libchdb into a process configured with a ClickHouse server', () => {
    expect(mapsLibchdb(`{ url: 'http://127.0.0.1:9', dataDir: ${JSON.stringify(join(dir, 'unused'))} }`)).toBe(false)
  })

  it('maps it when embedded ClickHouse is used (the control: the check can see it)', () => {
    expect(mapsLibchdb(`{ dataDir: ${JSON.stringify(join(dir, 'chdb'))} }`)).toBe(true)
  })
})
