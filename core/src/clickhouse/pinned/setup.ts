import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, inject } from 'vitest'
import { startClickHouseStandIn } from './stand-in.js'

/**
 * Per test file of the pinned-ClickHouse project: a ClickHouse HTTP interface on loopback over chDB
 * of the compose stack's ClickHouse version (scripts/clickhouse/http_stand_in.py), its own engine and
 * data directory. Core's code reaches it as it reaches a server (`CLICKHOUSE_URL`): the same SQL
 * text, settings and query parameters over HTTP.
 */
const dir = mkdtempSync(join(tmpdir(), 'adc-pinned-ch-'))
const standIn = await startClickHouseStandIn(inject('pinnedPython'), join(dir, 'data'))
process.env.ADC_TEST_CLICKHOUSE_URL = standIn.url
process.env.CLICKHOUSE_URL = standIn.url

afterAll(async () => {
  await standIn.stop()
  rmSync(dir, { recursive: true, force: true })
})
