/**
 * `npm test`: every test of the project, in one command.
 *
 * 1. typecheck (tsc -b)
 * 2. a real Kafka broker from Apache Kafka's Maven Central jars when Java and Maven are present
 *    (CI must have them: there a missing broker fails the run; elsewhere Kafka tests skip, saying why)
 * 3. Node suites (schemas, core with chDB and LMDB, end-to-end with workerd + core), and beside them
 * 4. the edge suite inside workerd, then
 * 5. the API fuzzer (schemathesis) against a running core, when Python is present (required in CI)
 *    (the output of each printed when it ends)
 * 6. the Kotlin SDK (sdk/kotlin, Maven + JUnit) when Java and Maven are present (required in CI),
 *    once the node suites are done
 *
 * Ends with one line `N passed, N failed` over every suite.
 */
import { execFile, spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { Failure } from './failures-reporter.js'

const execFileAsync = promisify(execFile)

const root = resolve(import.meta.dirname, '..')
const inCi = process.env.CI === 'true'
const env: NodeJS.ProcessEnv = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' }
const reportDir = join(root, '.cache', 'test-reports')
rmSync(reportDir, { recursive: true, force: true })
mkdirSync(reportDir, { recursive: true })

let passed = 0
let failed = 0
let skipped = 0
const failures: string[] = []

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

/** Each step's wall time, printed at the end: where a run's minutes go. */
const timings: string[] = []

interface StepOptions {
  countAsTest?: boolean
  env?: NodeJS.ProcessEnv
  /** Write the step's output to this file instead of the console (a step run beside another). */
  outputFile?: string
}

/**
 * Runs one step without blocking, so that two can run side by side; counts it when it ends. With
 * `outputFile`, its output goes there and is printed in one piece when it ends.
 */
function step(name: string, cmd: string, args: string[], opts: StepOptions = {}): Promise<boolean> {
  console.log(`\n=== ${name}${opts.outputFile ? ' (output below when it ends)' : ''}: ${cmd} ${args.join(' ')}`)
  const started = performance.now()
  const out = opts.outputFile ? openSync(opts.outputFile, 'w') : undefined
  const child = spawn(cmd, args, { cwd: root, env: { ...env, ...opts.env }, stdio: out === undefined ? 'inherit' : ['ignore', out, out] })
  return new Promise((done) => {
    let ended = false
    // A command that cannot start emits 'error' and may emit 'close' too: the step ends once.
    const finish = (status: number | null, signal: NodeJS.Signals | null): void => {
      if (ended) return
      ended = true
      if (out !== undefined) {
        closeSync(out)
        console.log(`\n=== ${name}: its output\n${readFileSync(opts.outputFile!, 'utf8')}`)
      }
      timings.push(`${name} ${((performance.now() - started) / 1000).toFixed(0)} s`)
      const ok = status === 0
      if (!ok) failures.push(`${name} (exit ${status ?? signal})`)
      if (opts.countAsTest) ok ? passed++ : failed++
      done(ok)
    }
    child.once('error', (err) => {
      console.error(`${name}: ${err.message}`)
      finish(null, null)
    })
    child.once('close', finish)
  })
}

/** What went wrong, a line each, repeated at the end of the run so that its last lines name it. */
const problems: string[] = []

/** The first lines of a failure message, on one line. */
function firstLines(text: string, lines = 4): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, lines).join(' | ').slice(0, 800)
}

/** Where a vitest suite's reports go: its JSON counts, and what failed (scripts/failures-reporter.ts). */
function reportsOf(name: string): { json: string; failures: string } {
  return { json: join(reportDir, `${name}.json`), failures: join(reportDir, `${name}.failures.jsonl`) }
}

/**
 * Runs vitest with `args` and the reporters of suite `name`: the console (or, `beside` another
 * step, a log file printed when it ends), the JSON counts, and what failed.
 */
function vitestStep(title: string, name: string, args: string[], { beside = false } = {}): Promise<boolean> {
  const reports = reportsOf(name)
  return step(title, 'npx', ['vitest', 'run', ...args, '--reporter=default', '--reporter=json', `--outputFile.json=${reports.json}`, `--reporter=${join(root, 'scripts/failures-reporter.ts')}`], {
    env: { ADC_FAILURES_FILE: reports.failures },
    ...(beside ? { outputFile: join(reportDir, `${name}.log`) } : {}),
  })
}

function countVitest(name: string, suite: string): void {
  const { json: file, failures: failuresFile } = reportsOf(name)
  if (!existsSync(file)) {
    failures.push(`${suite}: no report written`)
    failed++
    return
  }
  const report = JSON.parse(readFileSync(file, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number }
  passed += report.numPassedTests
  failed += report.numFailedTests
  skipped += report.numPendingTests + report.numTodoTests
  if (!existsSync(failuresFile)) return
  for (const line of readFileSync(failuresFile, 'utf8').split('\n').filter(Boolean)) {
    const f = JSON.parse(line) as Failure
    problems.push(`${suite}: ${[f.file, f.where].filter(Boolean).join(' > ') || 'unhandled'}${f.kind === 'test' ? '' : ` (${f.kind})`}: ${firstLines(f.message)}`)
    // A suite whose beforeAll threw: vitest counts its tests as skipped, yet the suite failed.
    if (f.kind !== 'test') failed++
  }
}

/** Sums the `<testsuite tests= failures= errors= skipped=>` counts of Surefire's XML reports. */
function countSurefire(dir: string, suite: string): void {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('TEST-') && f.endsWith('.xml')) : []
  if (files.length === 0) {
    failures.push(`${suite}: no report written`)
    failed++
    return
  }
  for (const f of files) {
    const head = /<testsuite\b[^>]*>/.exec(readFileSync(join(dir, f), 'utf8'))?.[0] ?? ''
    const n = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(head)?.[1] ?? 0)
    const bad = n('failures') + n('errors')
    passed += n('tests') - bad - n('skipped')
    failed += bad
    skipped += n('skipped')
  }
}

// The Python tools install while the types are checked and the broker starts (one after the other,
// these took 29 + 73 + 36 s and the broker's start): the S3 API test server for the Iceberg-on-S3
// sink test (moto, from PyPI), then pyiceberg (pinned, from PyPI) for the lake tests, which reads the
// Iceberg table as a data engineer does.
const pythonTools = has('python3')
  ? step('S3 test server install', 'bash', ['scripts/s3/ensure.sh'], { outputFile: join(reportDir, 's3-install.log') })
      .then(() => step('pyiceberg install', 'bash', ['scripts/iceberg/ensure.sh'], { outputFile: join(reportDir, 'pyiceberg-install.log') }))
  : Promise.resolve(true)

// 1. types
const typecheck = step('typecheck', 'npx', ['tsc', '-b'], { countAsTest: true })

// 2. Kafka broker
let startedKafka = false
if (!env.KAFKA_BROKERS) {
  if (has('java') && has('mvn')) {
    console.log('\n=== starting a Kafka broker from Maven Central jars')
    try {
      const { stdout: out, stderr } = await execFileAsync('bash', [join(root, 'scripts/kafka/start.sh')], { cwd: root, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
      process.stderr.write(stderr)
      const line = out.split('\n').find((l) => l.startsWith('KAFKA_BROKERS='))
      if (line) {
        env.KAFKA_BROKERS = line.slice('KAFKA_BROKERS='.length).trim()
        startedKafka = true
      }
    } catch (err) {
      console.error(`could not start Kafka: ${(err as Error).message}`)
      if (inCi) failures.push('kafka broker did not start')
    }
  } else if (inCi) {
    failures.push('CI needs Java and Maven to run the Kafka tests')
  } else {
    console.log('\nJava or Maven not found: the Kafka contract tests will skip (CI runs them).')
  }
}
await typecheck
await pythonTools

try {
  // 3, 4 and 5. Beside the node suites: the edge suite in workerd, then the API fuzzer. Most node
  // suite files wait on processes and servers, so on 2 cores the edge suite beside them took 548 s
  // for both against 537 + 123 s one after the other; the fuzzer (bounded in time, not in requests)
  // takes the edge suite's place when it ends, so the node suites never have more than one step beside.
  const besideNodeSuites = vitestStep('edge suite (workerd)', 'edge', ['--root', 'edge'], { beside: true }).then(async () => {
    if (has('python3') && existsSync(join(root, 'scripts/schemathesis.sh'))) {
      await step('API fuzzing (schemathesis)', 'bash', ['scripts/schemathesis.sh'], { countAsTest: true, outputFile: join(reportDir, 'schemathesis.log') })
    } else if (inCi) {
      failures.push('CI needs python3 for schemathesis')
      failed++
    }
  })
  await vitestStep('node suites', 'node', [])
  // 6. The Kotlin SDK after the node suites, whose Kotlin conformance test builds in the same
  // target directory (beside the fuzzer, if it still runs).
  const kotlin = kotlinSdk()
  await besideNodeSuites
  await kotlin
  countVitest('node', 'node suites')
  countVitest('edge', 'edge suite')
} finally {
  if (startedKafka) spawnSync('bash', [join(root, 'scripts/kafka/stop.sh')], { cwd: root, env, stdio: 'inherit' })
}

/** The Kotlin SDK's tests, counted from Surefire's reports. */
async function kotlinSdk(): Promise<void> {
  if (has('java') && has('mvn')) {
    const kotlinDir = join(root, 'sdk/kotlin')
    const reports = join(kotlinDir, 'target/surefire-reports')
    rmSync(reports, { recursive: true, force: true })
    await step('Kotlin SDK (maven)', 'mvn', ['-q', '-B', '-Dstyle.color=never', '-f', join(kotlinDir, 'pom.xml'), 'test'])
    countSurefire(reports, 'Kotlin SDK')
  } else if (inCi) {
    failures.push('CI needs Java and Maven for the Kotlin SDK tests')
    failed++
  } else {
    console.log('\nJava or Maven not found: the Kotlin SDK tests skip (CI runs them).')
  }
}

console.log(`\nTime by step: ${timings.join(', ')}`)
if (problems.length > 0) console.log(`\nWhat failed:\n  ${problems.join('\n  ')}`)
if (failures.length > 0) console.log(`\nFailed steps:\n  ${failures.join('\n  ')}`)
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failures.length > 0 || failed > 0 ? 1 : 0)
