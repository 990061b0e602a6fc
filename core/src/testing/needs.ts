/**
 * Test support: suites that need a tool from outside the repository (a Kafka broker, moto's S3
 * server, pyiceberg, Caddy, promtool, Chromium, a JVM with Maven, a ClickHouse server). Where the
 * tool is present the suite runs. Where it is missing: in CI (`CI=true`) the suite fails, saying what
 * is missing and how to get it, because a suite skipped in CI would pass silently; elsewhere it is
 * skipped, its title and a warning saying why. Imported by tests only.
 *
 * Whether the tool is present is decided before the call, when the file is collected (an env var,
 * a file that exists, a binary that answers `spawnSync`); a probe that must await can do so at the
 * top of the test file.
 */
import { describe, it, type TestFunction } from 'vitest'

export interface Need {
  /** What the suite needs, as the reader of a failure looks for it: "a Kafka broker (KAFKA_BROKERS)". */
  what: string
  /** Whether it is here. */
  available: boolean
  /** How to get it, as an instruction: "run scripts/s3/ensure.sh". */
  howTo: string
  /** False for a tool CI cannot get: the suite then skips in CI too. @default true */
  requiredInCi?: boolean
}

/** What becomes of a suite named `name` that needs `need`, with the titles and message to show. */
export type Verdict =
  | { kind: 'run' }
  | { kind: 'skip'; title: string }
  | { kind: 'fail'; title: string; message: string }

/** The decision alone: run when available, fail when missing in CI (unless CI cannot have it), skip otherwise. */
export function verdict(name: string, need: Need, ci: boolean): Verdict {
  if (need.available) return { kind: 'run' }
  if (ci && need.requiredInCi !== false) {
    return {
      kind: 'fail',
      title: `needs ${need.what} in CI`,
      message: `${name}: ${need.what} is missing; ${need.howTo}. CI (CI=true) must run this suite: skipped, it would pass silently.`,
    }
  }
  return { kind: 'skip', title: `${name} (skipped: ${need.what} is missing; to run it, ${need.howTo})` }
}

const inCi = (): boolean => process.env.CI === 'true'

/**
 * Declares the suites of `body` when `need` is available; `body` runs as the file's own top level,
 * so its hooks and suite titles are what they would be without the gate. When it is missing, a
 * suite `name` stands in: in CI one failing test, elsewhere a skipped one titled with the reason.
 *
 * @example
 * describeNeeding('iceberg on S3', s3Server, () => {
 *   beforeAll(async () => { moto = await startMoto(['warehouse']) })
 *   describe('iceberg on S3', () => { … })
 * })
 */
export function describeNeeding(name: string, need: Need, body: () => void): void {
  const v = verdict(name, need, inCi())
  if (v.kind === 'run') return body()
  if (v.kind === 'fail') {
    describe(name, () => {
      it(v.title, () => {
        throw new Error(v.message)
      })
    })
    return
  }
  console.warn(v.title)
  describe.skip(v.title, () => {
    it(`needs ${need.what}`, () => {})
  })
}

/** One test that needs `need`, beside others that do not: `it(name, fn)` under the same rule. */
export function itNeeding(name: string, need: Need, fn: TestFunction): void {
  const v = verdict(name, need, inCi())
  if (v.kind === 'run') return void it(name, fn)
  if (v.kind === 'fail') {
    it(name, () => {
      throw new Error(v.message)
    })
    return
  }
  console.warn(v.title)
  it.skip(v.title, fn)
}
