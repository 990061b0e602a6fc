import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeNeeding } from '../../core/src/testing/needs.js'
import { ROOT, type EdgeHandle } from './system.js'
import { conformanceSystem, type Tenant } from './conformance.js'

/**
 * The Kotlin SDK (sdk/kotlin) against the real edge (workerd via wrangler dev) and core: its
 * client runs as a child JVM (sdk/kotlin/src/test/kotlin/dev/adc/sdk/ConformanceChild.kt), built
 * with Maven. Needs Java and Maven: skipped without them, except in CI, where they are required.
 */
const KOTLIN = join(ROOT, 'sdk', 'kotlin')
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
const haveJvm = has('java') && has('mvn')
const needJvm = { what: 'Java and Maven (`java` and `mvn` on PATH)', available: haveJvm, howTo: 'install a JDK and Maven (Debian: default-jdk-headless, maven)' }
const sys = conformanceSystem('kt_')
const { runId, tenant, books, expectExactlyOnce } = sys

let edge: EdgeHandle
let classpath = ''

beforeAll(async () => {
  if (!haveJvm) return
  const built = spawnSync('mvn', ['-q', '-B', '-Dstyle.color=never', '-DskipTests', 'test-compile', 'dependency:build-classpath',
    '-Dmdep.outputFile=target/classpath.txt', '-Dmdep.includeScope=test'], { cwd: KOTLIN, encoding: 'utf8' })
  if (built.status !== 0) throw new Error(`mvn failed: ${built.stdout}${built.stderr}`)
  classpath = [join(KOTLIN, 'target/classes'), join(KOTLIN, 'target/test-classes'), readFileSync(join(KOTLIN, 'target/classpath.txt'), 'utf8').trim()].join(':')
  ;({ edge } = await sys.start())
}, 240_000)

afterAll(() => sys.stop())

interface ChildRun { out: string; code: number | null; signal: NodeJS.Signals | null }

/** Runs the Kotlin child in `mode`; with `killAt`, sends SIGKILL once its output matches. */
function child(t: Tenant, mode: string, extra: Record<string, string>, killAt?: RegExp): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const env = {
      ...process.env, SDK_MODE: mode, SDK_ENDPOINT: edge.url, SDK_PUBLISHER: t.publisherId, SDK_KEY_ID: t.signingKeyId,
      SDK_SECRET: t.signingSecret, SDK_CAMPAIGN: t.campaignId, SDK_RUN: runId, ...extra,
    }
    const p = spawn('java', ['-cp', classpath, 'dev.adc.sdk.ConformanceChildKt'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString()
      if (killAt?.test(out)) p.kill('SIGKILL')
    })
    p.stderr.on('data', (b: Buffer) => { out += b.toString() })
    p.once('error', reject)
    p.once('exit', (code, signal) => resolve({ out, code, signal }))
  })
}

function doneStats(run: ChildRun): { delivered: number; dropped: number; queued: number } {
  const m = /done (\{.*\})/.exec(run.out)
  expect(m, run.out.slice(-2000)).not.toBeNull()
  return JSON.parse(m![1]!) as { delivered: number; dropped: number; queued: number }
}

function queueFile(): string {
  const dir = join(ROOT, '.cache', 'e2e')
  mkdirSync(dir, { recursive: true })
  return join(mkdtempSync(join(dir, 'sdk-kotlin-')), 'queue.log')
}

describeNeeding('Kotlin SDK conformance against the real edge and core', needJvm, () => describe('Kotlin SDK conformance against the real edge and core', () => {
  it('a JVM killed with SIGKILL mid-flush and restarted on its file queue loses nothing and doubles nothing', async () => {
    const t = await tenant('crash')
    const file = queueFile()
    const first = await child(t, 'produce', { SDK_EVENTS: '1200', SDK_QUEUE_FILE: file }, /answered/)
    expect(first.signal, first.out.slice(-2000)).toBe('SIGKILL')
    expect(first.out).toContain('queued')
    const second = await child(t, 'resume', { SDK_QUEUE_FILE: file })
    expect(second.code, second.out.slice(-2000)).toBe(0)
    // The restart resent the whole queue, the batch the edge had already stored included.
    expect(doneStats(second)).toMatchObject({ delivered: 1200, dropped: 0, queued: 0 })
    const pub = await expectExactlyOnce(t, 1200)
    expect(pub.edge.duplicate, 'the killed run had a batch stored that its queue still held').toBeGreaterThanOrEqual(500)
  })

  it('a 429 storm: no request before Retry-After, each 429 halves the next request, then everything is delivered', async () => {
    const t = await tenant('storm', { perSecond: 10, burst: 20 })
    const run = await child(t, 'storm', { SDK_EVENTS: '200', SDK_QUEUE_FILE: queueFile() })
    expect(run.code, run.out.slice(-2000)).toBe(0)
    const answers = [...run.out.matchAll(/^answer (\d+) (\d+) (\d+) (\d+)$/gm)].map((m) => ({ at: Number(m[1]), status: Number(m[2]), retryAfter: Number(m[3]), events: Number(m[4]) }))
    expect(answers.filter((a) => a.status === 429).length, run.out.slice(-2000)).toBeGreaterThan(1)
    answers.forEach((a, i) => {
      const next = answers[i + 1]
      if (a.status !== 429 || !next) return
      expect(next.at - a.at, 'no request before Retry-After').toBeGreaterThanOrEqual(a.retryAfter * 1000 - 50)
      // The edge refuses a request larger than the burst whole: each 429 halves the next request.
      expect(next.events, JSON.stringify(answers.slice(0, i + 2).map((x) => [x.status, x.events]))).toBeLessThanOrEqual(Math.max(1, Math.floor(a.events / 2)))
    })
    expect(run.out).not.toContain('rejected')
    expect(doneStats(run)).toMatchObject({ delivered: 200, dropped: 0, queued: 0 })
    await expectExactlyOnce(t, 200)
  })

  it('malformed input: each bad event comes back with its code, the rest are delivered and billed (the SDK agent passes IVT)', async () => {
    const t = await tenant('malformed')
    const run = await child(t, 'malformed', { SDK_QUEUE_FILE: queueFile() })
    expect(run.code, run.out.slice(-2000)).toBe(0)
    const bad = Object.fromEntries([...run.out.matchAll(/^bad (\w+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
    const rejected = [...run.out.matchAll(/^rejected (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!])
    expect(rejected.sort()).toEqual([
      [bad.badGeo, 'invalid_event'], [bad.badId, 'invalid_event'], [bad.stale, 'clock_skew'], [bad.otherPublisher, 'publisher_mismatch'],
    ].sort())
    expect(doneStats(run)).toMatchObject({ delivered: 30, dropped: 4, queued: 0 })
    await expectExactlyOnce(t, 30)
    const billed = await books(t.publisherId)
    expect(billed?.core.billed, JSON.stringify(billed)).toBe(30)
  })
}))
