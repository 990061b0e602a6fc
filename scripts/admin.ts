/**
 * `npm run admin -- <command>`: operations on core's tenant store in DATA_DIR, run while core is
 * stopped (the store is an LMDB file core keeps open).
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
import { openTenantStore } from '../core/src/tenants/tenant-store.js'

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
  const store = openTenantStore({ dir })
  try {
    const key = await createAdminKey(store, id)
    console.error(`admin key created for "${id}" in ${dir}; it is shown once, store it now:`)
    console.log(key)
    return 0
  } finally {
    await store.close()
  }
}

process.exitCode = await main(process.argv.slice(2))
