import { execFileSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'

/**
 * Installs chDB at the compose stack's ClickHouse version once per run (scripts/clickhouse/ensure.sh,
 * a virtualenv from PyPI) and hands its python to the test files of the pinned-ClickHouse project.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..')

declare module 'vitest' {
  export interface ProvidedContext {
    pinnedPython: string
  }
}

export default function setup(project: TestProject): void {
  // ADC_PINNED_PYTHON: another python with chDB, to try core's SQL on another ClickHouse release.
  const python = process.env.ADC_PINNED_PYTHON ?? execFileSync('bash', [join(root, 'scripts/clickhouse/ensure.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }).trim()
  project.provide('pinnedPython', python)
}
