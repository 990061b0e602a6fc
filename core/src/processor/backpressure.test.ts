import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { ClickHouseClient } from '@clickhouse/client'
import { createClickHouse, migrate } from '../clickhouse/client.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log } from '../log/log.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { createProcessor } from './processor.js'
import { trafficMix } from '../testing/events.js'

const root = mkdtempSync(join(tmpdir(), 'adc-backpressure-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** A ClickHouse client whose inserts wait until the test opens the gate: a slow or stuck server. */
function gated(client: ClickHouseClient): { client: ClickHouseClient; open(): void; waiting(): number } {
  let release: (() => void) | undefined
  let gate = new Promise<void>((r) => (release = r))
  let waiting = 0
  const wrap = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    waiting++
    await gate
    waiting--
    return fn(...a)
  }
  const proxy = Object.create(client) as ClickHouseClient
  proxy.exec = wrap(client.exec.bind(client)) as ClickHouseClient['exec']
  proxy.command = wrap(client.command.bind(client)) as ClickHouseClient['command']
  return {
    client: proxy,
    open() {
      release?.()
      gate = Promise.resolve()
    },
    waiting: () => waiting,
  }
}

/** Counts records the processor has been handed, per topic, to see how far it reads ahead. */
function counting(log: Log): { log: Log; delivered: Map<string, number> } {
  const delivered = new Map<string, number>()
  const wrapped: Log = Object.create(log) as Log
  wrapped.consume = (options) =>
    log.consume({
      ...options,
      onBatch: async (batch, ctx) => {
        delivered.set(batch.topic, (delivered.get(batch.topic) ?? 0) + batch.records.length)
        return options.onBatch(batch, ctx)
      },
    })
  return { log: wrapped, delivered }
}

describe('backpressure', () => {
  it('reads no further than the batch in flight while ClickHouse does not answer, then catches up', async () => {
    const realLog = await createEmbeddedLog({ dir: join(root, 'log'), logger: pino({ level: 'silent' }) })
    const ch = createClickHouse({ dataDir: join(root, 'chdb') })
    await migrate(ch, 'adc_bp')
    const { client, open, waiting } = gated(ch)
    const { log, delivered } = counting(realLog)
    await realLog.ensureTopic('ad-events', 2)
    await realLog.ensureTopic('edge-stats', 1)
    const { records } = trafficMix(4000, { seed: 3 })
    await realLog.append('ad-events', records)
    const p = createProcessor({
      log, clickhouse: client, database: 'adc_bp', stateDir: join(root, 'state'), groupId: 'bp', logger: pino({ level: 'silent' }),
      registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords: 300,
    })
    await p.start()
    const deadline = Date.now() + 10_000
    while (waiting() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    await new Promise((r) => setTimeout(r, 300))
    // One batch was handed over and waits on the sink; nothing more was read.
    expect(waiting()).toBe(1)
    expect(delivered.get('ad-events')).toBe(300)
    expect(p.status().events.billable).toBe(0)
    open()
    const end = Date.now() + 30_000
    while ((p.status().topics['ad-events']?.[0]?.applied ?? -1) + (p.status().topics['ad-events']?.[1]?.applied ?? -1) + 2 < records.length && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20))
    }
    await p.stop()
    expect(delivered.get('ad-events')).toBe(records.length)
    await realLog.close()
    await ch.close()
  })
})
