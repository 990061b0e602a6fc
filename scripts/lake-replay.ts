/**
 * Rebuilds ClickHouse's `events_raw` for a UTC day from the Iceberg raw table (the lake is the
 * source of truth). Reads core's configuration (DATA_DIR, CLICKHOUSE_*, ICEBERG_*); with embedded
 * chDB stop core first (one process per data directory).
 *
 *   node --import tsx scripts/lake-replay.ts --day 2026-11-23              into a fresh database <db>_replay_20261123
 *   node --import tsx scripts/lake-replay.ts --day 2026-11-23 --into adc_x into that database (created and migrated)
 *   node --import tsx scripts/lake-replay.ts --day 2026-11-23 --in-place   drop the day in CLICKHOUSE_DATABASE and reload it
 *
 * A fresh database also gets the day before (billing's click join looks back a day); run the
 * billing job for the day against it and compare, or rebuild in place and rerun the job.
 */
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { isValidDay } from '../core/src/billing/days.js'
import { createClickHouse, migrate } from '../core/src/clickhouse/client.js'
import { loadConfig } from '../core/src/config.js'
import { icebergDeps } from '../core/src/lake/config.js'
import { lakeReader, replaceDayFromLake, restoreDayFromLake } from '../core/src/lake/restore.js'
import { lakeSetup } from '../core/src/sinks/iceberg-sink.js'

const USAGE = 'usage: node --import tsx scripts/lake-replay.ts --day YYYY-MM-DD [--into <database> | --in-place]'

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { day: { type: 'string' }, into: { type: 'string' }, 'in-place': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help || !values.day || !isValidDay(values.day) || (values.into && values['in-place'])) {
    console.error(USAGE)
    return values.help ? 0 : 2
  }
  const config = loadConfig()
  const dataDir = resolve(config.DATA_DIR)
  const deps = icebergDeps(config, dataDir)
  if (!deps.icebergDir && !deps.iceberg?.catalog) {
    console.error('the Iceberg table is off (ICEBERG_ENABLED=false)')
    return 2
  }
  const { catalog } = lakeSetup({ dir: deps.icebergDir, ...deps.iceberg })
  const table = await catalog.load({ namespace: deps.iceberg?.namespace ?? ['adc'], name: deps.iceberg?.table ?? 'events_raw' })
  catalog.close?.()
  if (!table) {
    console.error('no lake table in the catalog yet')
    return 1
  }
  const reader = lakeReader(table.metadata.location, deps.iceberg?.s3)
  const client = createClickHouse({ url: config.CLICKHOUSE_URL, dataDir: join(dataDir, 'chdb') })
  try {
    const database = values['in-place'] ? config.CLICKHOUSE_DATABASE : values.into ?? `${config.CLICKHOUSE_DATABASE}_replay_${values.day.replaceAll('-', '')}`
    await migrate(client, database)
    const { rows } = values['in-place']
      ? await replaceDayFromLake(client, { reader, database, day: values.day })
      : await restoreDayFromLake(client, { reader, database, day: values.day })
    console.log(JSON.stringify({ day: values.day, database, rows, table: table.metadataLocation }))
    return 0
  } finally {
    await client.close()
  }
}

process.exit(await main(process.argv.slice(2)))
