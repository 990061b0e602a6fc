/**
 * Runs the streaming processor over a list of records on an embedded log and waits until all are
 * applied: the stream side of the tests that hold both billing engines against each other.
 * Imported by tests and benchmarks only.
 */
import { EVENTS_TOPIC, EDGE_STATS_TOPIC } from '@adc/schemas'
import { join } from 'node:path'
import pino from 'pino'
import type { ClickHouseClient } from '../clickhouse/client.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { ProducerRecord } from '../log/log.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import type { EventWorkerOptions } from '../processor/event-worker.js'
import { createProcessor } from '../processor/processor.js'

/**
 * Test support: runs the real processor (embedded log, LMDB state, chDB sinks) over `records` in the
 * given order until every record is applied, then stops it.
 */
export async function runStream(opts: {
  ch: ClickHouseClient; database: string; dir: string; records: ProducerRecord[]; partitions?: number; maxBatchRecords?: number; worker?: EventWorkerOptions
  /** Edge-stats records (what the edge counted), applied too before the processor stops. */
  edgeStats?: ProducerRecord[]
}): Promise<void> {
  const log = await createEmbeddedLog({ dir: join(opts.dir, 'log'), logger: pino({ level: 'silent' }) })
  const stats = opts.edgeStats ?? []
  try {
    await log.ensureTopic(EVENTS_TOPIC, opts.partitions ?? 2)
    await log.ensureTopic(EDGE_STATS_TOPIC, 1)
    await log.append(EVENTS_TOPIC, opts.records)
    if (stats.length > 0) await log.append(EDGE_STATS_TOPIC, stats)
    const processor = createProcessor({
      log, clickhouse: opts.ch, database: opts.database, stateDir: join(opts.dir, 'state'), groupId: 'g-rules',
      logger: pino({ level: 'silent' }), registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords: opts.maxBatchRecords ?? 7,
      ...opts.worker,
    })
    await processor.start()
    const deadline = Date.now() + 60_000
    const applied = (topic = EVENTS_TOPIC) => Object.values(processor.status().topics[topic] ?? {}).reduce((a, s) => a + s.applied + 1, 0)
    while ((applied() < opts.records.length || applied(EDGE_STATS_TOPIC) < stats.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const done = applied()
    const statsDone = applied(EDGE_STATS_TOPIC)
    await processor.stop()
    if (done < opts.records.length) throw new Error(`processor applied ${done} of ${opts.records.length} records`)
    if (statsDone < stats.length) throw new Error(`processor applied ${statsDone} of ${stats.length} edge-stats records`)
  } finally {
    await log.close()
  }
}
