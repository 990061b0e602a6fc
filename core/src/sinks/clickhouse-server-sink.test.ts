import { afterAll, beforeAll } from 'vitest'
import { createClickHouse, migrate, type ClickHouseClient } from '../clickhouse/client.js'
import { createClickHouseSink } from './clickhouse-sink.js'
import { clickhouseProbe, runSinkContract } from '../testing/sink.contract.js'
import { describeNeeding } from '../testing/needs.js'

/**
 * The same sink contract against a ClickHouse server over HTTP (`CLICKHOUSE_URL`, e.g. the compose
 * stack's http://adc:adc_dev@127.0.0.1:8123). No package registry this project's CI reaches serves a
 * ClickHouse server recent enough (Debian's is 18.16), so CI runs the contract on chDB only; this
 * suite runs wherever a server is given and skips, saying so, elsewhere.
 */
const url = process.env.CLICKHOUSE_URL ?? ''
const server = {
  what: 'a ClickHouse server (CLICKHOUSE_URL)',
  available: url !== '',
  howTo: 'set CLICKHOUSE_URL, e.g. to the compose stack\'s server',
  requiredInCi: false,
}

describeNeeding('clickhouse server sink', server, () => {
  let ch: ClickHouseClient
  let n = 0
  const run = `${Date.now().toString(36)}`
  beforeAll(() => {
    ch = createClickHouse({ url, dataDir: '' })
  })
  afterAll(async () => {
    for (let i = 0; i < n; i++) await ch.command({ query: `DROP DATABASE IF EXISTS adc_srv_${run}_${i}` })
    await ch.close()
  })
  const q = async <T>(query: string): Promise<T[]> => (await ch.query({ query, format: 'JSONEachRow' })).json<T>()

  runSinkContract({
    name: 'clickhouse (server over HTTP)',
    async newSink() {
      const db = `adc_srv_${run}_${n++}`
      await migrate(ch, db)
      return {
        sink: createClickHouseSink({ client: ch, database: db }),
        probe: clickhouseProbe(q, db),
      }
    },
  })
})
