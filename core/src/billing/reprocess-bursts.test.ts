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
 * A model run over stored rows counts bursts as the stream that ran it does. A click that waits for
 * its impression is scored by the stream when the impression releases it; the burst counters of its
 * receive minute must give the same verdicts either way (the stream's own and a reprocess with the
 * same model and thresholds), for the click and for the events of its minute around it.
 *
 * Before, the stream counted and scored a waiting click when its impression released it (a
 * correction of an orphan read the counters, by then swept, without counting itself) and never
 * counted a click that did not join, while scoreDay counted joined clicks at their log position: the
 * stream quarantined the click (31st of the user key's minute when released) and billed the impression
 * after it; the reprocess billed the click (30th) and quarantined that impression. Now every click past
 * dedupe counts when it arrives (join-step.ts), and scoreDay counts the same events (`counts_burst`).
 */
const DAY = '2026-11-23'
const M = Date.UTC(2026, 10, 23, 10, 0, 0)
const MIN = 60_000
const M2 = M + 120 * MIN
const M3 = M + 240 * MIN
const root = mkdtempSync(join(tmpdir(), 'adc-reprocess-bursts-'))
let ch: ClickHouseClient
const model = ivtModel('ivt-2026.12.1')!

const uk = (e: EnvelopeInput, userKey: string | undefined): EnvelopeInput =>
  ({ ...e, event: { ...e.event, ...(userKey ? { userKey } : {}) } }) as EnvelopeInput
// One user key, 30 a minute allowed: 29 impressions, the click (its impression not there yet), one more
// impression, then the click's impression (no user key), all received in one minute.
const envs: EnvelopeInput[] = [
  ...Array.from({ length: 29 }, (_, i) => uk(testEnvelope({ type: 'impression', n: i, impressionId: `imp_${i}`, ts: M + i * 100, receivedAt: M + i * 100 + 50, ipPrefix: `198.51.${i}.0/24` }), 'u1')),
  uk(testEnvelope({ type: 'click', n: 100, impressionId: 'imp_x', ts: M + 10_000, receivedAt: M + 10_050, ipPrefix: '198.51.100.0/24' }), 'u1'),
  uk(testEnvelope({ type: 'impression', n: 101, impressionId: 'imp_e', ts: M + 11_000, receivedAt: M + 11_050, ipPrefix: '198.51.101.0/24' }), 'u1'),
  testEnvelope({ type: 'impression', n: 102, impressionId: 'imp_x', ts: M, receivedAt: M + 12_050, ipPrefix: '198.51.102.0/24' }),
  // Two hours later, user key u3: 30 impressions, then a click waiting for imp_y (the 31st of its
  // minute: a burst), orphaned when the watermark passes its 30-minute window, and corrected when
  // imp_y arrives within the lateness. Its minute's counters are long swept by then: the click is
  // scored with its counts from when it arrived, as the reprocess counts it at its log position.
  ...Array.from({ length: 30 }, (_, i) => testEnvelope({ type: 'impression', n: 200 + i, impressionId: `imp_u3_${i}`, ts: M2 + i * 100, receivedAt: M2 + i * 100 + 50, userKey: 'u3' })),
  testEnvelope({ type: 'click', n: 300, impressionId: 'imp_y', ts: M2 + 5_000, receivedAt: M2 + 5_050, userKey: 'u3' }),
  ...Array.from({ length: 8 }, (_, i) => testEnvelope({ type: 'impression', n: 310 + i, impressionId: `imp_later_${i}`, ts: M2 + 40 * MIN + i, receivedAt: M2 + 40 * MIN + i + 50 })),
  testEnvelope({ type: 'impression', n: 320, impressionId: 'imp_y', ts: M2 + 5_000 - 60_000, receivedAt: M2 + 50 * MIN }),
  // Four hours later, user key u4: 29 impressions, a click orphaned at once (its impression imp_z was
  // seen, 40 minutes before it: outside the window), then one more impression: the 31st of the
  // minute, since every click past dedupe counts toward the bursts, joined or not.
  testEnvelope({ type: 'impression', n: 400, impressionId: 'imp_z', ts: M3 - 40 * MIN, receivedAt: M3 - 1_000 }),
  ...Array.from({ length: 29 }, (_, i) => testEnvelope({ type: 'impression', n: 410 + i, impressionId: `imp_u4_${i}`, ts: M3 + i * 100, receivedAt: M3 + i * 100 + 50, userKey: 'u4' })),
  testEnvelope({ type: 'click', n: 450, impressionId: 'imp_z', ts: M3 + 5_000, receivedAt: M3 + 5_050, userKey: 'u4' }),
  testEnvelope({ type: 'impression', n: 451, impressionId: 'imp_u4_last', ts: M3 + 6_000, receivedAt: M3 + 6_050, userKey: 'u4' }),
]

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
  await migrate(ch, 'adc')
  await runStream({ ch, database: 'adc', dir: root, records: envs.map(toRecord), partitions: 1, worker: { ivtLimits: model.limits, modelVersion: model.version } })
}, 120_000)

afterAll(async () => {
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

describe('bursts counted by the stream and by a reprocess with the same model', () => {
  it('gives a released click and the events of its minute the same verdicts', async () => {
    const names = new Map(envs.map((e) => [e.key, `${e.type}:${e.event.impressionId}`]))
    const byEvent = async (modelVersion?: string) =>
      Object.fromEntries([...(await recordVerdicts(ch, { database: 'adc', day: DAY, ...(modelVersion ? { modelVersion } : {}) }))].map(([id, v]) => [names.get(id.split(':')[2]!), v]))
    const stream = await byEvent()
    await scoreDay({ client: ch, database: 'adc', day: DAY, model, jobId: 'JOBBURSTS' })
    const reprocessed = await byEvent(model.version)
    expect(Object.values(stream).filter((v) => v !== 'billable').length).toBeGreaterThan(0)
    expect(reprocessed).toEqual(stream)
    // The corrected click is the 31st of its minute; the impression after the orphaned click too.
    expect([stream['click:imp_y'], stream['impression:imp_u3_29'], stream['click:imp_z'], stream['impression:imp_u4_last']]).toEqual(['sivt_burst', 'billable', 'orphan_click', 'sivt_burst'])
  })
})
