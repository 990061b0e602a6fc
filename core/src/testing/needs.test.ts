import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { verdict, type Need } from './needs.js'

const frob: Need = { what: 'the frobnicator (FROB_URL)', available: false, howTo: 'run scripts/frob.sh' }

describe('verdict', () => {
  it('runs a suite whose need is here, in CI and elsewhere', () => {
    expect(verdict('frob', { ...frob, available: true }, true)).toEqual({ kind: 'run' })
    expect(verdict('frob', { ...frob, available: true }, false)).toEqual({ kind: 'run' })
  })

  it('fails a suite whose need is missing in CI, saying what is missing and how to get it', () => {
    const v = verdict('frob suite', frob, true)
    expect(v).toMatchObject({ kind: 'fail', title: 'needs the frobnicator (FROB_URL) in CI' })
    expect(v.kind === 'fail' && v.message).toBe(
      'frob suite: the frobnicator (FROB_URL) is missing; run scripts/frob.sh. CI (CI=true) must run this suite: skipped, it would pass silently.',
    )
  })

  it('skips a suite whose need is missing outside CI, its title saying why', () => {
    expect(verdict('frob suite', frob, false)).toEqual({
      kind: 'skip',
      title: 'frob suite (skipped: the frobnicator (FROB_URL) is missing; to run it, run scripts/frob.sh)',
    })
  })

  it('skips in CI too a suite whose need CI cannot have', () => {
    expect(verdict('frob suite', { ...frob, requiredInCi: false }, true)).toMatchObject({ kind: 'skip' })
  })
})

/**
 * The registration itself, through vitest as a suite file meets it: a file with a missing need, a
 * met one and one test needing it, run once with CI=true and once without.
 */
describe('describeNeeding and itNeeding in a vitest run', () => {
  const repo = resolve(import.meta.dirname, '../../..')
  mkdirSync(join(repo, '.cache'), { recursive: true })
  // Under the repository, so the file resolves `vitest` from its node_modules.
  const dir = mkdtempSync(join(repo, '.cache', 'needs-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const helper = relative(dir, join(import.meta.dirname, 'needs.ts')).replaceAll('\\', '/')
  // A config of its own, or vitest takes the repository's and finds no file of its projects here.
  writeFileSync(join(dir, 'vitest.config.mjs'), 'export default {}\n')
  writeFileSync(join(dir, 'gate.test.ts'), `
import { describe, it } from 'vitest'
import { describeNeeding, itNeeding } from '${helper}'
const frob = ${JSON.stringify(frob)}
describeNeeding('frob suite', frob, () => {
  describe('frob suite', () => { it('frobs', () => { throw new Error('ran without its need') }) })
})
describeNeeding('here suite', { ...frob, available: true }, () => { it('runs', () => {}) })
describe('mixed', () => {
  itNeeding('frobs once', frob, () => { throw new Error('ran without its need') })
  it('needs nothing', () => {})
})
`)

  interface Report { testResults: Array<{ assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }> }> }
  async function runGate(ci: boolean): Promise<Array<[string, string, string]>> {
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'CI'))
    if (ci) env.CI = 'true'
    const out = join(dir, `report-${ci}.json`)
    const vitest = join(repo, 'node_modules', 'vitest', 'vitest.mjs')
    await promisify(execFile)(process.execPath, [vitest, 'run', '--root', dir, '--reporter=json', `--outputFile=${out}`], { cwd: dir, env })
      .catch((err: unknown) => err) // a failing run exits 1: the report says why
    const report = JSON.parse(readFileSync(out, 'utf8')) as Report
    return report.testResults.flatMap((f) => f.assertionResults).map((t) => [t.fullName, t.status, t.failureMessages.join('\n').split('\n')[0]!])
  }

  it('in CI, fails the suite and the test whose need is missing, with the reason and how to get it', async () => {
    const why = 'the frobnicator (FROB_URL) is missing; run scripts/frob.sh. CI (CI=true) must run this suite: skipped, it would pass silently.'
    expect(await runGate(true)).toEqual([
      ['frob suite needs the frobnicator (FROB_URL) in CI', 'failed', `Error: frob suite: ${why}`],
      ['runs', 'passed', ''],
      ['mixed frobs once', 'failed', `Error: frobs once: ${why}`],
      ['mixed needs nothing', 'passed', ''],
    ])
  }, 120_000)

  it('elsewhere, skips them with the reason in their titles and runs the rest', async () => {
    expect(await runGate(false)).toEqual([
      ['frob suite (skipped: the frobnicator (FROB_URL) is missing; to run it, run scripts/frob.sh) needs the frobnicator (FROB_URL)', 'skipped', ''],
      ['runs', 'passed', ''],
      ['mixed frobs once (skipped: the frobnicator (FROB_URL) is missing; to run it, run scripts/frob.sh)', 'skipped', ''],
      ['mixed needs nothing', 'passed', ''],
    ])
  }, 120_000)
})
