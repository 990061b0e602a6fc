import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { ivtModel } from '../ivt/models/index.js'
import { testEnvelope, toRecord } from '../testing/events.js'
import { runStream } from '../testing/stream-run.js'
import { recordVerdicts } from './final-join.js'
import { scoreDay } from './reprocess.js'

/**
 * A reprocess counts bursts as the processor's counters do: per partition, user key (or IP prefix)
 * and minute of edge receive time, over every event that reaches the IVT step in that minute,
 * whatever UTC day its `ts` falls on. Events of a day arrive up to 24 h late, beside the next day's,
 * so a day scored alone undercounts its minutes. Held here against the processor itself running the
 * same model: the reprocess of a day written under the live model must give the verdicts the stream
 * gives when it runs ivt-2026.12.1.
 */
const DAY = '2026-11-20'
const D = Date.parse(`${DAY}T00:00:00Z`)
const MIN = 60_000
const model = ivtModel('ivt-2026.12.1')!

let root: string
let ch: ClickHouseClient

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'adc-reprocess-days-'))
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
})
afterAll(async () => {
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

/** One user key, 20 events of each of three days received in one minute each: 40 a minute, over the model's 30. */
function traffic() {
  const at = (n: number, ts: number, receivedAt: number) =>
    testEnvelope({ type: 'impression', n, impressionId: `imp_${n}`, ts, receivedAt, userKey: 'u_bot' })
  return [
    // Minute 00:00 of the day: 20 events of the previous day, 20 min late, then 20 of the day.
    ...Array.from({ length: 20 }, (_, k) => at(k, D - 20 * MIN + k, D + 10_000 + k)),
    ...Array.from({ length: 20 }, (_, k) => at(100 + k, D + k, D + 20_000 + k)),
    // Minute 00:00 of the next day: 20 events of the day, 20 min late, then 20 of the next day.
    ...Array.from({ length: 20 }, (_, k) => at(200 + k, D + 24 * 60 * MIN - 20 * MIN + k, D + 24 * 60 * MIN + 10_000 + k)),
    ...Array.from({ length: 20 }, (_, k) => at(300 + k, D + 24 * 60 * MIN + k, D + 24 * 60 * MIN + 20_000 + k)),
  ]
}

describe('reprocess burst counts across days', () => {
  it('gives a day the verdicts the processor gives when it runs the model, for minutes shared with the days around it', async () => {
    const records = traffic().map(toRecord)
    await migrate(ch, 'adc_model')
    await runStream({ ch, database: 'adc_model', dir: join(root, 'model'), records, partitions: 1, worker: { ivtLimits: model.limits, modelVersion: model.version } })
    await migrate(ch, 'adc_live')
    await runStream({ ch, database: 'adc_live', dir: join(root, 'live'), records, partitions: 1 })
    await scoreDay({ client: ch, database: 'adc_live', day: DAY, model, jobId: 'job_days' })

    const stream = await recordVerdicts(ch, { database: 'adc_model', day: DAY })
    const count = (m: Map<string, string>) => [...m.values()].filter((v) => v === 'sivt_burst').length
    // The processor flags the 31st to 40th event of each minute: the day's last 10 at 00:00 of the
    // day, and the next day's at 00:00 of the next (none of the day's late ones).
    expect(count(stream)).toBe(10)
    const reprocessed = await recordVerdicts(ch, { database: 'adc_live', day: DAY, modelVersion: model.version })
    expect(Object.fromEntries(reprocessed)).toEqual(Object.fromEntries(stream))
  }, 180_000)
})
