/**
 * A vitest reporter for `npm test`: writes what failed, one JSON object a line, to the file named by
 * `ADC_FAILURES_FILE`: failed tests, and errors outside any test (a `beforeAll` that threw, a file
 * that did not load, an unhandled rejection). The JSON reporter counts a suite whose `beforeAll`
 * threw as skipped tests and keeps no message; this keeps the reason, so the end of the run can
 * name it.
 */
import { appendFileSync } from 'node:fs'
import type { Reporter, TestModule } from 'vitest/node'

export interface Failure {
  /** The test file, relative to the run's root. */
  file: string
  /** The test's or suite's full name; empty for the file itself or an unhandled error. */
  where: string
  /** `test`, `suite` (a hook or collection error), `file` or `unhandled`. */
  kind: 'test' | 'suite' | 'file' | 'unhandled'
  message: string
}

type Err = { message?: string; name?: string }
const text = (errors: readonly Err[]): string => errors.map((e) => `${e.name ?? 'Error'}: ${e.message ?? ''}`).join(' / ')

export default class FailuresReporter implements Reporter {
  private readonly out = process.env.ADC_FAILURES_FILE

  private write(f: Failure): void {
    if (this.out) appendFileSync(this.out, `${JSON.stringify(f)}\n`)
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandled: ReadonlyArray<Err>): void {
    for (const m of modules) {
      const file = m.relativeModuleId
      const own = m.errors()
      if (own.length > 0) this.write({ file, where: '', kind: 'file', message: text(own) })
      for (const s of m.children.allSuites()) {
        const errors = s.errors()
        if (errors.length > 0) this.write({ file, where: s.fullName, kind: 'suite', message: text(errors) })
      }
      for (const t of m.children.allTests('failed')) this.write({ file, where: t.fullName, kind: 'test', message: text(t.result().errors ?? []) })
    }
    for (const e of unhandled) this.write({ file: '', where: '', kind: 'unhandled', message: text([e]) })
  }
}
