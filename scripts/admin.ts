/**
 * `npm run admin -- <command>`: operations on core's tenant store, written through the shared tenant
 * topic like any replica's. With KAFKA_BROKERS it may run while core runs; with the embedded log
 * (DATA_DIR/log, an LMDB file core keeps open) stop core first.
 *
 *   npm run admin -- create-key [--id <admin id>]   prints a new admin key once; only its hash is kept
 *
 * This is how a fresh production store gets its first admin key (or, for one start,
 * ADC_BOOTSTRAP_ADMIN_KEY; see the README's security section).
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { createAdminKey, BOOTSTRAP_ADMIN_ID } from '../core/src/tenants/bootstrap.js'
import { pino } from 'pino'
import { createEmbeddedLog } from '../core/src/log/embedded-log.js'
import { createKafkaLog } from '../core/src/log/kafka-log.js'
import { openSharedTenantStore } from '../core/src/tenants/shared-tenant-store.js'

const USAGE = 'usage: npm run admin -- create-key [--id <admin id>]   (DATA_DIR selects the store; stop core first)'

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { id: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  const [command] = positionals
  if (values.help || command === undefined) {
    console.log(USAGE)
    return command === undefined && !values.help ? 2 : 0
  }
  if (command !== 'create-key') {
    console.error(`unknown command ${command}\n${USAGE}`)
    return 2
  }
  const id = values.id ?? BOOTSTRAP_ADMIN_ID
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(id)) {
    console.error('--id must be 1-128 characters of A-Z a-z 0-9 _ . : -')
    return 2
  }
  const dataDir = resolve(process.env.DATA_DIR ?? '.data')
  const dir = join(dataDir, 'tenants')
  if (!existsSync(dataDir)) console.error(`note: ${dataDir} does not exist yet; creating a new store there`)
  const logger = pino({ level: 'warn' })
  const brokers = process.env.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter(Boolean) ?? []
  const log = brokers.length > 0
    ? await createKafkaLog({ brokers, clientId: 'adc-admin', logger })
    : await createEmbeddedLog({ dir: join(dataDir, 'log'), logger })
  const store = await openSharedTenantStore({ dir, log, logger })
  try {
    const key = await createAdminKey(store, id)
    console.error(`admin key created for "${id}" in ${dir}; it is shown once, store it now:`)
    console.log(key)
    return 0
  } finally {
    await store.close()
    await log.close()
  }
}

process.exitCode = await main(process.argv.slice(2))
