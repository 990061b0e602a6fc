/**
 * Test support: tenant store replicas over one embedded log, as a fleet's replicas share the tenant
 * topic. `replica` opens one (on a fresh directory unless given); `closeAll` closes the replicas
 * before the logs and removes the directories (call it in `afterEach`). Imported by tests only.
 */
import { pino, type Logger } from 'pino'
import { createEmbeddedLog, type EmbeddedLogHandle } from '../log/embedded-log.js'
import type { Log } from '../log/log.js'
import { openSharedTenantStore } from '../tenants/shared-tenant-store.js'
import type { TenantStore } from '../tenants/tenant-store.js'
import { tempDirs } from './temp-dirs.js'

export interface TenantReplicas {
  readonly logger: Logger
  /**
   * Clean-ups run by `closeAll`, first to last: replicas are put at the front, logs at the back, so
   * every replica closes before the log it reads.
   */
  readonly closers: Array<() => Promise<void>>
  /** A new empty directory, removed by `closeAll`. */
  tmp(): string
  /** An embedded log on a fresh directory. */
  sharedLog(): Promise<EmbeddedLogHandle>
  /** A replica of the tenant store over `log`, its view in `dir`. */
  replica(log: Log, dir?: string): Promise<TenantStore>
  closeAll(): Promise<void>
}

export function tenantReplicas(prefix: string): TenantReplicas {
  const dirs = tempDirs(prefix)
  const closers: Array<() => Promise<void>> = []
  const logger = pino({ level: 'silent' })
  return {
    logger,
    closers,
    tmp: () => dirs.make(),
    async sharedLog() {
      const log = await createEmbeddedLog({ dir: dirs.make(), logger, idleWaitMs: 50 })
      closers.push(() => log.close())
      return log
    },
    async replica(log, dir = dirs.make()) {
      const store = await openSharedTenantStore({ dir, log, logger })
      closers.unshift(() => store.close())
      return store
    },
    async closeAll() {
      for (const c of closers.splice(0)) await c().catch(() => undefined)
      dirs.removeAll()
    },
  }
}
