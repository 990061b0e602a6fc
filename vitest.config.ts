import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

// The edge runs its own suite inside workerd (edge/vitest.config.ts); these projects run in Node.
export default defineConfig({
  test: {
    // Vitest's default is one file at a time below three cores, yet most of these files wait on
    // processes, brokers and servers rather than compute: two at a time on a 2-core machine took the
    // node suites from 782 s to 532 s, each file at most 1.3 times as long (e2e files still one at a
    // time then; since, two at a time too). Tests take free ports, unique topics and data directories,
    // so files run side by side: the end-to-end files, each with its own workerd and core, took 146 s
    // two at a time against 267 s one at a time, every test passing.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      { test: { name: 'schemas', include: ['schemas/src/**/*.test.ts'] } },
      { test: { name: 'sdk-js', include: ['sdk/js/src/**/*.test.ts'], testTimeout: 30_000 } },
      {
        test: {
          name: 'core',
          include: ['core/src/**/*.test.ts'],
          exclude: ['**/*.contract.ts', '**/*.pinned.test.ts', '**/node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Core's SQL on the ClickHouse version docker-compose.yml pins, over the HTTP interface: the
        // DDL, every sink insert with its settings, and the API and billing suites (core/src/clickhouse/pinned/).
        test: {
          name: 'core-clickhouse-pinned',
          include: [
            'core/src/**/*.pinned.test.ts', 'core/src/sinks/clickhouse-server-sink.test.ts',
            'core/src/api/app.test.ts', 'core/src/api/viewability.test.ts', 'core/src/api/retention-reads.test.ts', 'core/src/billing/jobs.test.ts',
            // Privacy erasure: lightweight deletes, SHA256() of a column, the latest row per request.
            'core/src/api/privacy.test.ts',
          ],
          globalSetup: ['core/src/clickhouse/pinned/global-setup.ts'],
          setupFiles: ['core/src/clickhouse/pinned/setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      { test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], testTimeout: 180_000, hookTimeout: 240_000 } },
    ],
  },
})
