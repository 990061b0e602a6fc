import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { partitionFor, type EnvelopeInput } from '@adc/schemas'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordVerdicts } from '../billing/final-join.js'
import { scoreDay } from '../billing/reprocess.js'
import { ivtModel } from '../ivt/models/index.js'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { testEnvelope, toRecord } from '../testing/events.js'
import { runStream } from '../testing/stream-run.js'
import { referenceVerdicts, type ModelEvent } from './reference-model.js'
import { DEDUPE_HORIZON_MS } from './rules.js'

/**
 * Re-deliveries of one delivery key around the dedupe horizon (24 h of edge receive time, sliding with
 * each sighting): the processor, the billing job's final join and the reference model must give every
 * record the same verdict. The edge accepts an event up to 24 h old and a few minutes ahead of its
 * clock, and a client resend may carry a fresh `ts`, so a resend can reach the log just past the
 * horizon of its first sighting.
 */
const DAY = '2026-11-20'
const D = Date.parse(`${DAY}T00:00:00Z`)
const MIN = 60_000
const HOUR = 60 * MIN
const PARTITIONS = 1

let root: string
let ch: ClickHouseClient

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'adc-horizon-'))
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
})
afterAll(async () => {
  await ch?.close()
  rmSync(root, { recursive: true, force: true })
})

/** The same delivery (key, event id) sent again: another receive time and ts. */
const resend = (env: EnvelopeInput, receivedAt: number, ts: number): EnvelopeInput =>
  ({ ...env, receivedAt, event: { ...env.event, ts } }) as EnvelopeInput

async function threeWays(db: string, records: EnvelopeInput[], maxBatchRecords?: number) {
  await migrate(ch, db)
  await runStream({ ch, database: db, dir: join(root, db), records: records.map(toRecord), partitions: PARTITIONS, maxBatchRecords })
  const next = new Array<number>(PARTITIONS).fill(0)
  const events: ModelEvent[] = records.map((env) => {
    const p = partitionFor(env.event.impressionId, PARTITIONS)
    return { id: `${p}:${next[p]!++}:${env.key}`, key: env.key, type: env.type, publisherId: env.event.publisherId, impressionId: env.event.impressionId, ts: Number(env.event.ts), receivedAt: env.receivedAt, channel: env.event.channel ?? 'web', prefetch: env.edge.prefetch === true }
  })
  const model = referenceVerdicts(events, () => '')
  const rs = await ch.query({
    query: `SELECT log_partition, log_offset, event_key, reason, sum(sign) AS n FROM ${db}.events_raw
      GROUP BY log_partition, log_offset, event_key, reason HAVING n > 0`,
    format: 'JSONEachRow',
  })
  const stream = new Map((await rs.json<Record<string, unknown>>()).map((r) => [`${r.log_partition}:${r.log_offset}:${r.event_key}`, String(r.reason) || 'billable']))
  const final = await recordVerdicts(ch, { database: db, day: DAY })
  return { ids: events.map((e) => e.id), model, stream, final }
}

describe('delivery dedupe at the horizon: stream = final join = model', () => {
  it('a resend just past 24 h of the previous sighting is a new delivery, one within 24 h of a later resend is a duplicate', async () => {
    // a: resent 24 h 30 min after its only sighting (ts fresh, within the edge's 24 h): no duplicate.
    const a = testEnvelope({ type: 'impression', n: 1, impressionId: 'imp_a', ts: D + MIN, receivedAt: D + MIN })
    // b: resent exactly at the horizon (a duplicate) and 1 ms past it (not one).
    const b = testEnvelope({ type: 'impression', n: 2, impressionId: 'imp_b', ts: D + 2 * MIN + 400, receivedAt: D + 2 * MIN + 400 })
    const c = testEnvelope({ type: 'impression', n: 3, impressionId: 'imp_c', ts: D + 3 * MIN + 700, receivedAt: D + 3 * MIN + 700 })
    // d: resent after 20 h (a duplicate) and again 6 h later, 26 h after the first: the horizon slides.
    const d = testEnvelope({ type: 'impression', n: 4, impressionId: 'imp_d', ts: D + 10 * MIN, receivedAt: D + 10 * MIN })
    const records = [
      a, b, c, d,
      resend(d, d.receivedAt + 20 * HOUR, D + 20 * HOUR),
      resend(b, b.receivedAt + DEDUPE_HORIZON_MS, D + 23 * HOUR),
      resend(c, c.receivedAt + DEDUPE_HORIZON_MS + 1, D + 23 * HOUR),
      resend(a, a.receivedAt + DEDUPE_HORIZON_MS + 30 * MIN, D + 23 * HOUR + 59 * MIN),
      resend(d, d.receivedAt + 26 * HOUR, D + 23 * HOUR + 50 * MIN),
    ]
    const { ids, model, stream, final } = await threeWays('adc_horizon_1', records)
    expect(ids.map((id) => model.get(id))).toEqual([
      'billable', 'billable', 'billable', 'billable',
      'duplicate_delivery', 'duplicate_delivery', 'billable', 'billable', 'duplicate_delivery',
    ])
    expect(Object.fromEntries(final)).toEqual(Object.fromEntries(model))
    expect(Object.fromEntries(stream)).toEqual(Object.fromEntries(model))
  }, 120_000)

  it('keeps a click resent past the horizon, whose first delivery was orphaned and then joined, as its own record', async () => {
    // c1 waits for its impression; the watermark passes its window (an unrelated impression), so it
    // is an orphan; its impression arrives late and the stream corrects it (-1 orphan, +1 click).
    const c1 = testEnvelope({ type: 'click', n: 11, impressionId: 'imp_k', ts: D + HOUR, receivedAt: D + HOUR })
    const other = testEnvelope({ type: 'impression', n: 12, impressionId: 'imp_other', ts: D + 2 * HOUR, receivedAt: D + 2 * HOUR })
    const imp = testEnvelope({ type: 'impression', n: 13, impressionId: 'imp_k', ts: D + HOUR - MIN, receivedAt: D + 3 * HOUR })
    // The client sends c1 again 25 h 30 min later with a fresh ts: a new delivery, outside the window.
    const c2 = resend(c1, c1.receivedAt + 25 * HOUR + 30 * MIN, D + 2 * HOUR + 30 * MIN)
    const later = testEnvelope({ type: 'impression', n: 14, impressionId: 'imp_later', ts: D + 27 * HOUR, receivedAt: D + 27 * HOUR })
    const { ids, model, stream, final } = await threeWays('adc_horizon_2', [c1, other, imp, c2, later], 1)
    expect(ids.map((id) => model.get(id))).toEqual(['billable', 'billable', 'billable', 'orphan_click', 'billable'])
    const inDay = Object.fromEntries([...model].filter(([id]) => id !== ids[4]))
    expect(Object.fromEntries(stream)).toMatchObject(inDay)
    expect(Object.fromEntries(final)).toEqual(inDay)
  }, 120_000)

  it('calls a resend that carries another impression id and crosses midnight duplicate_delivery in both engines', async () => {
    // The delivery key hashes the event id: a resend is the same delivery whatever impression id or
    // ts it carries (dedupe-step.test.ts). Both ids in one log partition (PARTITIONS = 1).
    const first = testEnvelope({ type: 'impression', n: 21, impressionId: 'imp_x', ts: D - 10 * MIN, receivedAt: D - 10 * MIN })
    const again = { ...resend(first, D + 10 * MIN, D + 5 * MIN), event: { ...first.event, ts: D + 5 * MIN, impressionId: 'imp_y' } } as EnvelopeInput
    const { ids, model, stream, final } = await threeWays('adc_horizon_3', [first, again])
    expect(ids.map((id) => model.get(id))).toEqual(['billable', 'duplicate_delivery'])
    expect(stream.get(ids[1]!)).toBe('duplicate_delivery')
    expect(Object.fromEntries(final)).toEqual({ [ids[1]!]: 'duplicate_delivery' })
  }, 120_000)

  it('judges each record of a key resent past the horizon by its own IVT decision when a reprocess rescored the day', async () => {
    // i1 is the 31st event of one user key in its minute (a burst for ivt-2026.12.1, 30 a minute); its
    // resend 25 h later is a new delivery and a new impression, alone in its minute: clean.
    const burst = Array.from({ length: 30 }, (_, k) =>
      testEnvelope({ type: 'impression', n: 100 + k, impressionId: `imp_b${k}`, ts: D + 30 * MIN + k, receivedAt: D + 30 * MIN + k, userKey: 'u_burst' }))
    const i1 = testEnvelope({ type: 'impression', n: 31, impressionId: 'imp_i1', ts: D + 30 * MIN + 40, receivedAt: D + 30 * MIN + 40, userKey: 'u_burst' })
    const again = resend(i1, i1.receivedAt + 25 * HOUR, D + 23 * HOUR + 50 * MIN)
    const db = 'adc_horizon_4'
    const { ids } = await threeWays(db, [...burst, i1, again])
    const model = ivtModel('ivt-2026.12.1')!
    await scoreDay({ client: ch, database: db, day: DAY, model, jobId: 'job_resend' })
    const final = await recordVerdicts(ch, { database: db, day: DAY, modelVersion: model.version })
    expect([final.get(ids[29]!), final.get(ids[30]!), final.get(ids[31]!)]).toEqual(['billable', 'sivt_burst', 'billable'])
  }, 120_000)
})
