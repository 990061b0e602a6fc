import { defineConfig } from 'vitest/config'

// The edge runs its own suite inside workerd (edge/vitest.config.ts); these projects run in Node.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'schemas', include: ['schemas/src/**/*.test.ts'] } },
      { test: { name: 'sdk-js', include: ['sdk/js/src/**/*.test.ts'], testTimeout: 30_000 } },
      {
        test: {
          name: 'core',
          include: ['core/src/**/*.test.ts'],
          exclude: ['**/*.contract.ts', '**/node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      { test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], testTimeout: 180_000, hookTimeout: 240_000, fileParallelism: false } },
    ],
  },
})
