import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { createClickHouse, type ClickHouseClient } from '../clickhouse/client.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log } from '../log/log.js'
import type { CrashPoint } from './crash-points.js'
import { runHandoff } from './handoff-scenario.js'

// Two processors in one group on the embedded log (one process, separate state directories), one
// killed mid-batch: its partitions move to the other with their state, through the changelog.
const root = mkdtempSync(join(tmpdir(), 'adc-rebalance-'))
let ch: ClickHouseClient
let seq = 0

beforeAll(() => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
})
afterAll(async () => {
  await ch.close()
  rmSync(root, { recursive: true, force: true })
})

async function scenario(killAt: CrashPoint, { changelog = true, newMachine = false } = {}) {
  const dir = join(root, `run${++seq}`)
  const log = await createEmbeddedLog({ dir: join(dir, 'log'), logger: pino({ level: 'silent' }), retryBackoffMs: 20 })
  try {
    return await runHandoff({
      newLog: async () => log,
      closeLog: async () => {},
      clickhouse: ch,
      database: `adc_handoff_${seq}`,
      root: dir,
      changelog,
      killAt,
      newMachine,
    })
  } finally {
    await log.close()
  }
}

describe('partition handoff between processors (embedded log)', () => {
  it.each<[CrashPoint, boolean]>([
    ['mid_sink', false],
    ['after_iceberg', false],
    ['after_changelog', true],
    ['after_sink', true],
  ])('killed at %s (new machine: %s): the other processor takes over with the state; totals exact', async (killAt, newMachine) => {
    const { totals, expected, killed } = await scenario(killAt, { newMachine })
    expect(killed).toBe(true)
    expect(totals).toEqual(expected)
  }, 60_000)

  it('negative control: without the changelog handoff the totals are wrong', async () => {
    const { totals, expected, killed } = await scenario('mid_sink', { changelog: false, newMachine: true })
    expect(killed).toBe(true)
    // Re-sent impressions the old owner had seen count again, clicks whose impression the new
    // owner never saw wait instead of being billed, and the replayed range lands twice.
    expect(totals).not.toEqual(expected)
    expect(totals.impressions).toBeGreaterThan(expected.impressions)
    expect(totals.clicks).toBeLessThan(expected.clicks)
  }, 60_000)
})
