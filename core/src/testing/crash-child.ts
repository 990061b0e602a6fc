/**
 * A processor process for the crash tests (crash.test.ts): runs the real processor on an embedded
 * log and chDB in `CRASH_ROOT` until every record is applied, then prints totals as JSON and exits.
 * `ADC_CRASH_AT=<point>:<n>` kills it with SIGKILL at a named point; `CRASH_NO_DEDUP=1` removes the
 * insert dedup tokens (the negative control).
 */
import { EVENTS_TOPIC } from '@adc/schemas'
import { join } from 'node:path'
import { pino } from 'pino'
import { createClickHouse, migrate } from '../clickhouse/client.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { localLakeReader } from '../lake/restore.js'
import { createProcessor } from '../processor/processor.js'

const root = process.env.CRASH_ROOT
if (!root) throw new Error('CRASH_ROOT is required')
const lake = process.env.CRASH_LAKE
const db = 'adc_crash'

const log = await createEmbeddedLog({ dir: join(root, 'log'), logger: pino({ level: 'silent' }) })
const ch = createClickHouse({ dataDir: join(root, 'chdb') })
await migrate(ch, db)
const processor = createProcessor({
  log, clickhouse: ch, database: db, stateDir: join(root, 'state'), groupId: 'crash', logger: pino({ level: 'silent' }),
  registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords: Number(process.env.CRASH_BATCH ?? 200),
  dedupTokens: process.env.CRASH_NO_DEDUP !== '1', retryDelayMs: 20, ...(lake ? { icebergDir: lake } : {}),
})
await processor.start()
const end = await log.endOffsets(EVENTS_TOPIC)
const total = [...end.values()].reduce((a, b) => a + b, 0)
const deadline = Date.now() + 30_000
for (;;) {
  const committed = await log.committedOffsets('crash', EVENTS_TOPIC)
  if ([...committed.values()].reduce((a, b) => a + b, 0) >= total) break
  if (Date.now() > deadline) throw new Error(`not caught up: ${JSON.stringify(processor.status())}`)
  await new Promise((r) => setTimeout(r, 20))
}
await processor.stop()
const one = async (query: string): Promise<Record<string, number>> => {
  const [row] = await (await ch.query({ query, format: 'JSONEachRow' })).json<Record<string, unknown>>()
  return Object.fromEntries(Object.entries(row ?? {}).map(([k, v]) => [k, Number(v)]))
}
const totals = {
  ...(await one(`SELECT sum(impressions) impressions, sum(clicks) clicks, sum(duplicates) duplicates, sum(orphan_clicks) orphans, sum(repeat_clicks) repeats, sum(ivt_impressions) + sum(ivt_clicks) ivt, uniqMerge(uniques) uniques FROM ${db}.rollup_minute`)),
  ...(await one(`SELECT sum(sign) raw_events, count() raw_rows FROM ${db}.events_raw`)),
  ...(await one(`SELECT count() bad_rows, countIf(reason = 'sink_rejected') sink_rejected FROM ${db}.bad_rows`)),
  ...(lake ? await one(`SELECT count() lake_rows FROM ${localLakeReader(lake)}`) : {}),
  committed: total,
}
process.stdout.write(JSON.stringify(totals) + '\n')
await ch.close()
await log.close()
