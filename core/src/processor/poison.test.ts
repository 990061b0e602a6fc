import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino, type Logger } from 'pino'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log, ProducerRecord } from '../log/log.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { createProcessor, type Processor, type ProcessorDeps } from './processor.js'
import { testEnvelope, toRecord } from '../testing/events.js'
import { localLakeReader } from '../lake/restore.js'

const root = mkdtempSync(join(tmpdir(), 'adc-poison-'))
const lakeDir = join('.cache', `test-lake-poison-${process.pid}`)
let ch: ClickHouseClient
let seq = 0

beforeAll(async () => {
  ch = createClickHouse({ dataDir: join(root, 'chdb') })
})
afterAll(async () => {
  await ch.close()
  rmSync(root, { recursive: true, force: true })
  rmSync(lakeDir, { recursive: true, force: true })
})

const q = async <T>(query: string): Promise<T[]> => (await ch.query({ query, format: 'JSONEachRow' })).json<T>()
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0)
const good = (i: number): ProducerRecord => toRecord(testEnvelope({ type: 'impression', n: 71_000_000 + i, impressionId: `imp_pz${i}`, ts: T0 + i * 100 }))
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

/** A logger whose JSON lines the test reads. */
function capturedLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }) }
}

/** One partition per topic: the order of the records is the processing order. */
async function setup(name: string, over: Partial<ProcessorDeps> = {}) {
  const db = `adc_poison_${seq++}`
  await migrate(ch, db)
  const log = await createEmbeddedLog({ dir: join(root, `log-${name}`), logger: pino({ level: 'silent' }) })
  await log.ensureTopic('ad-events', 1)
  await log.ensureTopic('edge-stats', 1)
  const registry = createMetricsRegistry({ defaultMetrics: false })
  const { logger, lines } = capturedLogger()
  const p = createProcessor({ log, clickhouse: ch, database: db, stateDir: join(root, 'state', name), groupId: `g-${name}`, logger, registry, maxBatchRecords: 500, retryDelayMs: 50, ...over })
  return { db, log, p, registry, lines }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const appliedTo = (p: Processor, log: Log) => async (): Promise<boolean> => (p.status().topics['ad-events']?.[0]?.applied ?? -1) + 1 >= (await log.endOffsets('ad-events')).get(0)!

describe('poison records never block a partition', () => {
  it('a record whose rows ClickHouse refuses becomes a sink_rejected bad row; the rest of its partition is counted', async () => {
    const { db, log, p, registry, lines } = await setup('content', { icebergDir: join(lakeDir, 'content') })
    // A year past 9999 passes the envelope schema (ts <= 8.64e15) but is no DateTime64, and its rollup
    // minute no UInt32: refused.
    const yearTooFar = toRecord(testEnvelope({ type: 'impression', n: 71_900_001, impressionId: 'imp_pz_year', ts: 6e15, receivedAt: T0 + 5_000 }))
    // A lone surrogate in ua (valid JSON): refused by the schema in core, and its bad row must store.
    const loneSurrogate = toRecord(testEnvelope({ type: 'impression', n: 71_900_002, impressionId: 'imp_pz_ua', ts: T0 + 6_000, ua: '\ud800' }))
    expect(loneSurrogate.value).toContain('\\ud800')
    // An edge clock past the last representable Date: no time can be written for it anywhere.
    const receivedTooFar = toRecord(testEnvelope({ type: 'impression', n: 71_900_003, impressionId: 'imp_pz_recv', ts: T0 + 7_000, receivedAt: 9e15 }))
    // A receive time the schema allows but no edge clock gives (a year after the log got the record):
    // taken, it would move the partition's watermark a year on and expire all its state.
    const receivedNextYear = toRecord(testEnvelope({ type: 'impression', n: 71_900_004, impressionId: 'imp_pz_future', ts: T0 + 8_000, receivedAt: Date.now() + 365 * 86_400_000 }))
    const first = [...range(0, 100).map(good), yearTooFar, ...range(100, 150).map(good), loneSurrogate, ...range(150, 175).map(good), receivedTooFar, ...range(175, 190).map(good), receivedNextYear, ...range(190, 200).map(good)]
    await log.append('ad-events', first)
    // Edge-stats reports take the same path: one whose publisher id ClickHouse's JSON input refuses.
    const report = (batchId: string, publisherId: string) => ({ key: 'pub', value: JSON.stringify({ v: 1, kind: 'edge_stats', batchId, publisherId, minute: T0, received: 3, accepted: 2, duplicate: 0, rejected: 1, rejectedByReason: { invalid_event: 1 } }) })
    await log.append('edge-stats', [report('b1', 'pub_demo'), report('b2', 'pub\ud800'), report('b3', 'pub_demo')])
    await p.start()
    try {
      await until('the edge-stats reports', () => (p.status().topics['edge-stats']?.[0]?.applied ?? -1) >= 2)
      await until('the first batch', appliedTo(p, log))
      await log.append('ad-events', range(200, 250).map(good))
      await until('the later records', appliedTo(p, log))
      expect(p.health()).toEqual({ status: 'ok', stalled: [] })
    } finally {
      await p.stop()
      await log.close()
    }

    const [r] = await q<{ raw: number; imps: number; lake: number }>(`SELECT (SELECT sum(sign) FROM ${db}.events_raw) raw, (SELECT sum(impressions) FROM ${db}.rollup_minute) imps,
      (SELECT count() FROM ${localLakeReader(join(lakeDir, 'content'))}) lake`)
    expect({ raw: Number(r!.raw), imps: Number(r!.imps), lake: Number(r!.lake) }).toEqual({ raw: 250, imps: 250, lake: 250 })
    const bad = await q<{ reason: string; log_offset: number; step: string; details: string; payload: string; payload_original: string }>(`SELECT reason, log_offset, step, details, payload, payload_original FROM ${db}.bad_rows WHERE log_topic = 'ad-events' ORDER BY log_offset`)
    expect(bad.map((b) => [b.reason, Number(b.log_offset), b.step])).toEqual([['sink_rejected', 100, 'sinkStep'], ['bad_envelope', 151, 'decodeStep'], ['bad_envelope', 177, 'decodeStep'], ['bad_envelope', 193, 'decodeStep']])
    // The write refused it at its rollup minute (probed first, 321); the isolating probe at events_raw (41).
    expect(bad[0]!.details).toMatch(/^clickhouse: CANNOT_PARSE_DATETIME: .*DateTime/)
    expect(bad[0]!.payload).toBe(yearTooFar.value)
    expect(bad[1]!.details).toContain('client.ua')
    expect(bad[1]!.payload).toBe(loneSurrogate.value)
    expect(bad[2]!.details).toContain('receivedAt')
    expect(bad[3]!.details).toMatch(/^receivedAt: .* after the log received the record/)
    const [es] = await q<{ accepted: number; bad: string }>(`SELECT (SELECT sum(accepted) FROM ${db}.edge_stats_minute) accepted,
      (SELECT groupArray(concat(reason, ':', toString(log_offset), ':', substring(details, 1, 40))) FROM ${db}.bad_rows WHERE log_topic = 'edge-stats') bad`)
    expect(Number(es!.accepted)).toBe(4)
    expect(es!.bad).toEqual(['sink_rejected:1:clickhouse: CANNOT_PARSE_ESCAPE_SEQUENCE'])
    const metrics = await registry.metrics()
    expect(metrics).toMatch(/adc_processor_events_total\{topic="ad-events",outcome="bad_row",reason="sink_rejected"\} 1/)
    expect(metrics).toMatch(/adc_processor_events_total\{topic="edge-stats",outcome="bad_row",reason="sink_rejected"\} 1/)
    expect(metrics).toMatch(/adc_partition_stalled\{topic="ad-events",partition="0"\} 0/)
    expect(lines.some((l) => l.msg === 'a sink refused the batch for its content; isolating the records behind it' && l.engineCode === 321 && l.reason === 'content')).toBe(true)
  })

  it('several refused records in one batch are each set aside, adjacent ones and the last one included', async () => {
    const { db, log, p } = await setup('several')
    const poisonAt = new Set([0, 37, 38, 150, 299])
    const recs = range(0, 300).map((i) => poisonAt.has(i)
      ? toRecord(testEnvelope({ type: 'impression', n: 72_000_000 + i, impressionId: `imp_many${i}`, ts: 6e15 + i, receivedAt: T0 + i }))
      : good(1000 + i))
    await log.append('ad-events', recs)
    await p.start()
    try {
      await until('the batch', appliedTo(p, log))
    } finally {
      await p.stop()
      await log.close()
    }
    const bad = await q<{ log_offset: number }>(`SELECT log_offset FROM ${db}.bad_rows WHERE reason = 'sink_rejected' ORDER BY log_offset`)
    expect(bad.map((b) => Number(b.log_offset))).toEqual([...poisonAt])
    const [r] = await q<{ raw: number }>(`SELECT sum(sign) raw FROM ${db}.events_raw`)
    expect(Number(r!.raw)).toBe(300 - poisonAt.size)
  })

  it('an infrastructure failure retries the whole batch: the partition shows stalled with growing lag, then recovers', async () => {
    let down = true
    const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' })
    // A client whose server is unreachable while `down` (the sink then goes through the client, not chDB's direct access).
    const flaky = Object.create(ch) as ClickHouseClient
    flaky.exec = (async (...args: Parameters<ClickHouseClient['exec']>) => {
      if (down) throw refused()
      return ch.exec(...args)
    }) as ClickHouseClient['exec']
    flaky.command = (async (...args: Parameters<ClickHouseClient['command']>) => {
      if (down) throw refused()
      return ch.command(...args)
    }) as ClickHouseClient['command']
    const { db, log, p, registry, lines } = await setup('infra', { clickhouse: flaky })
    await log.append('ad-events', range(0, 100).map(good))
    await p.start()
    try {
      await until('two failed attempts', () => (p.health().stalled[0]?.attempts ?? 0) >= 2)
      expect(p.health()).toMatchObject({ status: 'degraded', stalled: [{ topic: 'ad-events', partition: 0, cause: 'infrastructure', sink: 'clickhouse' }] })
      // The engine's message stays in the logs: /healthz answers anyone.
      expect(JSON.stringify(p.health())).not.toContain('ECONNREFUSED')
      let metrics = await registry.metrics()
      expect(metrics).toMatch(/adc_partition_stalled\{topic="ad-events",partition="0"\} 1/)
      expect(metrics).toMatch(/adc_processor_lag_records\{topic="ad-events",partition="0"\} 100/)
      await log.append('ad-events', range(100, 160).map(good))
      await until('the lag to grow', async () => /adc_processor_lag_records\{topic="ad-events",partition="0"\} 160/.test(await registry.metrics()))
      const failedLines = lines.filter((l) => l.msg === 'batch failed; it will be delivered again')
      expect(failedLines.length).toBeGreaterThanOrEqual(2)
      expect(failedLines[0]).toMatchObject({ cause: 'infrastructure', sink: 'clickhouse', partition: 0, attempt: 1 })
      expect(JSON.stringify(failedLines[0])).toContain('ECONNREFUSED')
      down = false
      await until('recovery', appliedTo(p, log))
      expect(p.health()).toEqual({ status: 'ok', stalled: [] })
      metrics = await registry.metrics()
      expect(metrics).toMatch(/adc_partition_stalled\{topic="ad-events",partition="0"\} 0/)
      expect(metrics).toMatch(/adc_processor_lag_records\{topic="ad-events",partition="0"\} 0/)
    } finally {
      down = false
      await p.stop()
      await log.close()
    }
    const [r] = await q<{ raw: number; bad: number }>(`SELECT (SELECT sum(sign) FROM ${db}.events_raw) raw, (SELECT count() FROM ${db}.bad_rows) bad`)
    expect({ raw: Number(r!.raw), bad: Number(r!.bad) }).toEqual({ raw: 160, bad: 0 })
  })
})
