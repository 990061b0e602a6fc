import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EnvelopeInput } from '@adc/schemas'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { ivtModel } from '../ivt/models/index.js'
import { testEnvelope, toRecord } from '../testing/events.js'
import { runStream } from '../testing/stream-run.js'
import { recordVerdicts } from './final-join.js'
import { scoreDay } from './reprocess.js'

/**
 * A reprocess with the stream's own model judges every stored event as the stream did. The agent
 * rules of ivt/rules.ts do not apply to an event whose agent the edge does not have: a sender that
 * hashed it (`uaHash`), or an end user without consent whose request carried neither agent nor
 * address. The stored row must say so, or the reprocess reads an empty `ua` as a missing agent.
 */
const DAY = '2026-11-23'
const T = Date.UTC(2026, 10, 23, 10, 0, 0)
const root = mkdtempSync(join(tmpdir(), 'adc-reprocess-facts-'))
let ch: ClickHouseClient

const hashedAgent = (() => {
  const e = testEnvelope({ type: 'impression', n: 1, impressionId: 'imp_hashed', ts: T, ua: null })
  return { ...e, client: { ...e.client, uaHash: 'a'.repeat(64) } } as EnvelopeInput
})()
const withheld = (() => {
  const e = testEnvelope({ type: 'impression', n: 2, impressionId: 'imp_withheld', ts: T + 1000, ua: null })
  return { ...e, client: {}, event: { ...e.event, consent: false } } as EnvelopeInput
})()
// The control: no agent at all on the web, with consent: givt_missing_ua for both engines.
const missing = testEnvelope({ type: 'impression', n: 3, impressionId: 'imp_missing', ts: T + 2000, ua: null })
const envs = [hashedAgent, withheld, missing]

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
  await migrate(ch, 'adc')
  await runStream({ ch, database: 'adc', dir: root, records: envs.map(toRecord), partitions: 1 })
}, 120_000)

afterAll(async () => {
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

describe('reprocess with the stream model over events without an agent to judge', () => {
  it('gives a hashed agent and a withheld one the stream verdict (billable), and a missing agent givt_missing_ua', async () => {
    const byImp = async (modelVersion?: string) => {
      const v = await recordVerdicts(ch, { database: 'adc', day: DAY, ...(modelVersion ? { modelVersion } : {}) })
      const keys = new Map(envs.map((e) => [e.key, e.event.impressionId]))
      return Object.fromEntries([...v].map(([id, verdict]) => [keys.get(id.split(':')[2]!), verdict]))
    }
    expect(await byImp()).toEqual({ imp_hashed: 'billable', imp_withheld: 'billable', imp_missing: 'givt_missing_ua' })
    const model = ivtModel('ivt-2026.11.1')!
    await scoreDay({ client: ch, database: 'adc', day: DAY, model, jobId: 'JOBFACTS' })
    expect(await byImp(model.version)).toEqual({ imp_hashed: 'billable', imp_withheld: 'billable', imp_missing: 'givt_missing_ua' })
  })
})
