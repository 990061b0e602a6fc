import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import fc from 'fast-check'
import { chdbDirect, createClickHouseSink } from './clickhouse-sink.js'
import { localLakeReader } from '../lake/restore.js'
import { createIcebergSink } from './iceberg-sink.js'
import { classifySinkError, SinkWriteError } from './sink-errors.js'
import { batchOf, clickhouseProbe, eventRow, runSinkContract } from '../testing/sink.contract.js'

const dir = mkdtempSync(join(tmpdir(), 'adc-sink-'))
// chDB reads and writes Iceberg files only under the working directory.
const lakeDir = join('.cache', `test-lake-${process.pid}-${Date.now()}`)
let ch: ClickHouseClient
let n = 0

beforeAll(async () => {
  ch = createClickHouse({ dataDir: dir })
})
afterAll(async () => {
  await ch.close()
  rmSync(dir, { recursive: true, force: true })
  rmSync(lakeDir, { recursive: true, force: true })
})

const q = async <T>(query: string): Promise<T[]> => (await ch.query({ query, format: 'JSONEachRow' })).json<T>()

runSinkContract({
  name: 'clickhouse (chDB)',
  async newSink() {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    return {
      sink: createClickHouseSink({ client: ch, database: db }),
      probe: clickhouseProbe(q, db),
    }
  },
})

runSinkContract({
  name: 'iceberg (chDB IcebergLocal)',
  async newSink() {
    const db = `adc_lake_${n++}`
    await migrate(ch, db)
    const path = join(lakeDir, db)
    return {
      sink: await createIcebergSink({ client: ch, database: db, dir: path }),
      probe: {
        async eventTotals(partition) {
          const [r] = await q<{ events: number; billable: number }>(`SELECT sum(sign) AS events, sumIf(sign, billable = 1) AS billable FROM ${localLakeReader(path)} WHERE log_partition = ${partition}`)
          return { events: Number(r!.events), billable: Number(r!.billable) }
        },
      },
    }
  },
})

describe('clickhouse sink without dedup tokens (negative control)', () => {
  it('counts a batch written twice twice', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db, dedupTokens: false })
    await sink.write(batchOf('neg', 0, 0, 9), { recovering: false })
    await sink.write(batchOf('neg', 0, 0, 9), { recovering: true })
    const [r] = await q<{ i: number }>(`SELECT sum(impressions) AS i FROM ${db}.rollup_minute`)
    expect(Number(r!.i)).toBe(20)
  })
})

describe('iceberg raw table', () => {
  it('is partitioned by hour and readable back with icebergLocal()', async () => {
    const db = `adc_lake_${n++}`
    await migrate(ch, db)
    const path = join(lakeDir, db)
    const sink = await createIcebergSink({ client: ch, database: db, dir: path })
    const b = batchOf('lake', 3, 0, 3599 * 2, 'cmp_lake') // offsets are seconds: two hours of events
    await sink.write(b, { recovering: false })
    const rows = await q<{ h: number; n: number }>(`SELECT toStartOfHour(ts) AS h, count() AS n FROM ${localLakeReader(path)} GROUP BY h ORDER BY h`)
    expect(rows.map((r) => Number(r.n))).toEqual([3600, 3599])
    const { readdirSync } = await import('node:fs')
    const dataDirs = readdirSync(join(path, 'warehouse/adc.db/events_raw/data'))
    expect(dataDirs.length).toBeGreaterThanOrEqual(2)
  })
})

describe('events_raw as RowBinary', () => {
  it('round-trips agents and placements with tabs, newlines, backslashes and quotes byte for byte', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db })
    const b = batchOf('tsv', 0, 0, 0)
    const ua = "Mozilla/5.0 (X11)\tweird\\agent\n'quoted' \"double\" é"
    b.events[0] = { ...b.events[0]!, ua, placement: 'a\\tb', ivt_reasons: ['givt_known_bot', 'sivt_burst'] }
    await sink.write(b, { recovering: false })
    const [row] = await q<{ ua: string; placement: string; ivt_reasons: string[] }>(`SELECT ua, placement, ivt_reasons FROM ${db}.events_raw`)
    expect(row).toEqual({ ua, placement: 'a\\tb', ivt_reasons: ['givt_known_bot', 'sivt_burst'] })
  })
})

describe('events_raw through file()', () => {
  it('lands every column in its own place, and leaves no scratch file behind', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db })
    const b = batchOf('cols', 3, 40, 41)
    const e = b.events[0]!
    await sink.write(b, { recovering: false })
    const [row] = await q<Record<string, unknown>>(`SELECT event_key, impression_id, campaign_id, log_partition, log_offset, sign, view_method, toUnixTimestamp64Milli(ts) AS ts FROM ${db}.events_raw WHERE event_key = '${e.event_key}'`)
    expect(row).toEqual({ event_key: e.event_key, impression_id: e.impression_id, campaign_id: e.campaign_id, log_partition: e.log_partition, log_offset: e.log_offset, sign: e.sign, view_method: e.view_method, ts: e.ts })
    await sink.close?.()
    const { readdirSync } = await import('node:fs')
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('adc-chdb-insert-') && readdirSync(join(tmpdir(), f)).some((x) => x.startsWith(`${process.pid}-`)))).toEqual([])
  })
})

describe('chDB direct access', () => {
  it('is used on the client that owns a chDB connection, not on a wrapper that intercepts its calls', () => {
    expect(chdbDirect(ch)).toBeDefined()
    expect(chdbDirect(Object.create(ch) as ClickHouseClient)).toBeUndefined()
  })

  it('leaves no token behind: later inserts without a token still land after tokened sink writes', async () => {
    // chDB applies per-call settings as a sticky session SET (ENGINES.md); a leaked token would make
    // the next tokenless insert into a deduplicating table look like a retry and drop it silently.
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    await createClickHouseSink({ client: ch, database: db }).write(batchOf('leak', 0, 0, 9), { recovering: false })
    for (let i = 0; i < 2; i++) {
      await ch.insert({ table: `${db}.events_raw`, values: [{ ...eventRow(0, 100 + i), event_key: `later-${i}` }], format: 'JSONEachRow' })
    }
    const [r] = await q<{ later: number; all: number }>(`SELECT countIf(event_key LIKE 'later-%') AS later, count() AS all FROM ${db}.events_raw`)
    expect(r).toEqual({ later: 2, all: 12 })
    // The rollup's tokened insert (RowBinary through file(), the sink's last write to that table)
    // leaves nothing behind either: two later rollup rows without a token both land.
    for (const n of [5, 6]) {
      await ch.command({ query: `INSERT INTO ${db}.rollup_minute (minute, campaign_id, ad_id, publisher_id, geo, device, impressions) VALUES (toDateTime('2026-11-23 12:00:00', 'UTC'), 'later', 'ad', 'pub', 'US', 'desktop', ${n})` })
    }
    const [later] = await q<{ i: number }>(`SELECT sum(impressions) AS i FROM ${db}.rollup_minute WHERE campaign_id = 'later'`)
    expect(Number(later!.i)).toBe(11)
  })

  it('leaves no token behind from the small tables either (their raw inserts carry it in SETTINGS)', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const b = batchOf('leak-small', 0, 0, 9)
    const minute = b.rollup[0]!.minute
    b.rollupIvt.push({ minute, campaign_id: 'cmp_contract', publisher_id: 'pub1', event_type: 'impression', reason: 'givt_known_bot', events: 2 })
    b.ivtDecisions.push({ event_key: 'k', event_type: 'impression', campaign_id: 'cmp_contract', publisher_id: 'pub1', ts: Date.UTC(2026, 10, 23), score: 1, reasons: ['givt_known_bot'], model_version: 'm', quarantined: 1, decided_at: Date.UTC(2026, 10, 23) })
    b.badRows.push({ received_at: Date.UTC(2026, 10, 23), log_topic: 'leak-small', log_partition: 0, log_offset: 7, reason: 'bad_envelope', step: 'decodeStep', details: 'x', payload: '{}', processor_artifact: 'a', processor_version: 'v' })
    b.edgeStats.push({ minute, publisher_id: 'pub1', received: 3, accepted: 2, rejected: 1, duplicate: 0, rejected_by_reason: {} })
    await createClickHouseSink({ client: ch, database: db }).write(b, { recovering: false })
    // Two different rows each, without a token: both land unless a token stuck to the session.
    const at = '2026-11-23 12:00:00'
    for (const i of [1, 2]) {
      await ch.insert({ table: `${db}.ivt_decisions`, values: [{ event_key: `later-${i}`, event_type: 'impression', campaign_id: 'later', publisher_id: 'pub1', ts: at, score: i, reasons: [], model_version: 'm', quarantined: 0, decided_at: at }], format: 'JSONEachRow' })
      await ch.insert({ table: `${db}.bad_rows`, values: [{ received_at: at, log_topic: 'later', log_partition: 0, log_offset: 100 + i, reason: 'bad_envelope', step: 's', details: '', payload: '{}', processor_artifact: 'a', processor_version: 'v' }], format: 'JSONEachRow' })
      await ch.insert({ table: `${db}.edge_stats_minute`, values: [{ minute: at, publisher_id: 'later', received: i, accepted: i, rejected: 0, duplicate: 0, rejected_by_reason: {} }], format: 'JSONEachRow' })
    }
    const [r] = await q<{ d: string; bad: string; es: string }>(`SELECT
      (SELECT count() FROM ${db}.ivt_decisions WHERE campaign_id = 'later') AS d,
      (SELECT count() FROM ${db}.bad_rows WHERE log_topic = 'later') AS bad,
      (SELECT sum(received) FROM ${db}.edge_stats_minute WHERE publisher_id = 'later') AS es`)
    expect([Number(r!.d), Number(r!.bad), Number(r!.es)]).toEqual([2, 2, 3])
  })

  it('writes every table with its token on chDB, and a replay of the batch counts once', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db })
    const b = batchOf('direct', 0, 0, 99)
    b.rollupIvt.push({ minute: b.rollup[0]!.minute, campaign_id: 'cmp_contract', publisher_id: 'pub1', event_type: 'impression', reason: 'givt_known_bot', events: 2 })
    b.ivtDecisions.push({ event_key: 'k', event_type: 'impression', campaign_id: 'cmp_contract', publisher_id: 'pub1', ts: Date.UTC(2026, 10, 23), score: 1, reasons: ['givt_known_bot'], model_version: 'm', quarantined: 1, decided_at: Date.UTC(2026, 10, 23) })
    b.badRows.push({ received_at: Date.UTC(2026, 10, 23), log_topic: 'direct', log_partition: 0, log_offset: 7, reason: 'bad_envelope', step: 'decodeStep', details: 'x', payload: '{"a":"\t\\n"}', processor_artifact: 'a', processor_version: 'v' })
    b.edgeStats.push({ minute: b.rollup[0]!.minute, publisher_id: 'pub1', received: 3, accepted: 2, rejected: 1, duplicate: 0, rejected_by_reason: { bad_envelope: 1 } })
    for (const recovering of [false, true]) await sink.write(b, { recovering })
    const [r] = await q<{ e: number; i: number; u: number; ivt: number; d: number; bad: number; payload: string; es: number }>(`SELECT
      (SELECT sum(sign) FROM ${db}.events_raw) AS e, (SELECT sum(impressions) FROM ${db}.rollup_minute) AS i, (SELECT uniqMerge(uniques) FROM ${db}.rollup_minute) AS u,
      (SELECT sum(events) FROM ${db}.rollup_ivt_minute) AS ivt, (SELECT count() FROM ${db}.ivt_decisions) AS d, (SELECT count() FROM ${db}.bad_rows) AS bad,
      (SELECT any(payload) FROM ${db}.bad_rows) AS payload, (SELECT sum(received) FROM ${db}.edge_stats_minute) AS es`)
    expect(r).toEqual({ e: 100, i: 100, u: 7, ivt: 2, d: 1, bad: 1, payload: '{"a":"\t\\n"}', es: 3 })
  })
})

describe('content the engine refuses', () => {
  const badRow = (payload: string, details = 'x') => ({ received_at: Date.UTC(2026, 10, 23), log_topic: 't', log_partition: 0, log_offset: 7, reason: 'bad_envelope', step: 'decodeStep', details, payload, processor_artifact: 'a', processor_version: 'v' })

  it('a bad row is stored whatever its payload holds: ill-formed text made well-formed, the original kept escaped', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db })
    const payloads: string[] = []
    await fc.assert(fc.asyncProperty(
      fc.array(fc.string({ unit: fc.oneof(fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), fc.constantFrom('\ud800', '\udc00', '\u0000', '"', '\\', '😀')), maxLength: 30 }), { minLength: 1, maxLength: 5 }),
      async (ps) => {
        const b = batchOf(`bad-${payloads.length}`, 0, payloads.length, payloads.length)
        b.events = []
        b.rollup = []
        b.badRows = ps.map((p, i) => ({ ...badRow(p, `details ${p}`), log_offset: payloads.length + i }))
        payloads.push(...ps)
        await sink.write(b, { recovering: false })
      },
    ), { numRuns: 25 })
    const rows = await q<{ payload: string; payload_original: string; details: string }>(`SELECT payload, payload_original, details FROM ${db}.bad_rows ORDER BY log_offset`)
    expect(rows).toHaveLength(payloads.length)
    rows.forEach((r, i) => {
      const original = r.payload_original === '' ? r.payload : JSON.parse(r.payload_original) as string
      expect(original).toBe(payloads[i])
      expect(r.details.length).toBeGreaterThan(7)
    })
    // Not vacuous: some payloads were ill-formed.
    expect(rows.some((r) => r.payload_original !== '')).toBe(true)
  })

  it('a batch refused for its content leaves nothing stored in any table, and the probe stores nothing either', async () => {
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const sink = createClickHouseSink({ client: ch, database: db })
    const b = batchOf('refused', 0, 0, 9)
    // A user key with a lone surrogate reaches rollup_minute's uniques as a JSON escape the engine refuses.
    b.rollup[0]!.uniques.push('u\ud800')
    const err = await sink.write(b, { recovering: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SinkWriteError)
    expect((err as SinkWriteError).failure).toMatchObject({ kind: 'content', code: 25, type: 'CANNOT_PARSE_ESCAPE_SEQUENCE' })
    await expect(sink.probe!(b)).rejects.toMatchObject({ failure: { kind: 'content', code: 25 } })
    await sink.probe!(batchOf('refused', 0, 0, 9))
    // An event of 2200 is a DateTime64, but its rollup minute is no UInt32 (the engine would wrap it
    // into another minute): refused before anything is stored.
    const far = batchOf('far', 0, 10, 19)
    far.rollup[0] = { ...far.rollup[0]!, minute: Math.floor(Date.UTC(2200, 0, 1) / 60_000) * 60 }
    await expect(sink.write(far, { recovering: false })).rejects.toMatchObject({ failure: { kind: 'content', code: 321 } })
    // A year past 9999 cannot be a DateTime64: refused in events_raw, the first table written.
    const late = batchOf('late', 0, 20, 29)
    late.events[3] = { ...late.events[3]!, ts: 6e15 }
    await expect(sink.write(late, { recovering: false })).rejects.toMatchObject({ failure: { kind: 'content', code: 41 } })
    const [r] = await q<{ e: number; r: number }>(`SELECT (SELECT count() FROM ${db}.events_raw) AS e, (SELECT count() FROM ${db}.rollup_minute) AS r`)
    expect(r).toEqual({ e: 0, r: 0 })
  })

  it('tells content from infrastructure failures', async () => {
    expect(classifySinkError(new Error('connect ECONNREFUSED 127.0.0.1:8123'))).toMatchObject({ kind: 'infrastructure' })
    expect(classifySinkError(Object.assign(new Error('Memory limit exceeded'), { code: '241', type: 'MEMORY_LIMIT_EXCEEDED' }))).toMatchObject({ kind: 'infrastructure', code: 241 })
    expect(classifySinkError(Object.assign(new Error('Timeout exceeded'), { code: '159' }))).toMatchObject({ kind: 'infrastructure' })
    expect(classifySinkError(Object.assign(new Error('Code: 25. DB::Exception: Cannot parse escape sequence'), { clickhouseCode: 25 }))).toMatchObject({ kind: 'content', code: 25, type: 'CANNOT_PARSE_ESCAPE_SEQUENCE' })
    const db = `adc_sink_${n++}`
    await migrate(ch, db)
    const gone = await createClickHouseSink({ client: ch, database: 'no_such_db' }).write(batchOf('x', 0, 0, 0), { recovering: false }).catch((e: unknown) => e)
    expect((gone as SinkWriteError).failure.kind).toBe('infrastructure')
  })
})
