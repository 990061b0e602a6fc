import { randomUUID } from 'node:crypto'
import { open, type RootDatabase } from 'lmdb'
import type { Logger } from 'pino'
import { TENANTS_TOPIC, type ReasonCode } from '@adc/schemas'
import type { Consumer, Log, LogRecord } from '../log/log.js'
import { applyRecorded, hasTenantData, P, tenantEntries, type TenantCommand } from './tenant-state.js'
import { createTenantStore, TenantConflictError, TenantReferenceError, type TenantStore } from './tenant-store.js'
import { SYSTEM_ACTORS } from './change-log.js'


export interface SharedTenantStoreOptions {
  /** Directory of this replica's LMDB view. */
  dir: string
  log: Log
  logger: Logger
  /** The topic of tenant changes: one partition (one order for every replica), compacted, never expired. @default TENANTS_TOPIC */
  topic?: string
  /** Longest a start waits to catch up with the topic, and a write to be applied. @default 30_000 */
  timeoutMs?: number
}

/** A tenant change that was appended but not applied in time (the replica's consumer is stuck). */
export class TenantUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'TenantUnavailableError'
  }
}

interface Waiter {
  resolve(value: unknown): void
  reject(err: unknown): void
}

/**
 * The tenant store of a core replica among several: the tenant topic on the `Log` is the one source
 * of truth, each replica's LMDB directory only a view of it.
 *
 * - A write becomes a command record (keyed by a fresh command id) appended to the topic's single
 *   partition, and resolves once this replica has read it back and applied it: the caller reads its
 *   own write, and gets the same verdict every replica reaches.
 * - Every replica applies every record in topic order with the same deterministic state machine
 *   (tenant-state.ts), so two replicas creating the same id concurrently both see the first record
 *   win and the second refused (TenantConflictError, 409 at the API) — on every replica alike.
 * - On start, the view catches up from the offset it last applied (kept in the view, in the same
 *   transaction as each change) to the topic's end before the store is returned; a view ahead of the
 *   topic (a new cluster) is rebuilt from scratch. A store written before the shared topic existed
 *   is appended once as an `import` command (entries not yet present), then rebuilt from the topic.
 * - Each replica consumes in its own throwaway group that never commits (its position is the view's).
 * - Each command applied or refused leaves a change log entry at its offset, in the same transaction
 *   (change-log.ts: who, when, what), so every replica lists the same changes. A view kept before
 *   the change log is rebuilt from the topic once, so its log starts at the topic's first command.
 *
 * Records are keyed by command id, so compaction never removes an applied change; the topic is
 * compacted so that time-based retention never deletes tenants (Kafka's retention.ms does not apply
 * to compacted topics).
 */
export async function openSharedTenantStore(options: SharedTenantStoreOptions): Promise<TenantStore> {
  const { log, logger } = options
  const topic = options.topic ?? TENANTS_TOPIC
  const timeoutMs = options.timeoutMs ?? 30_000
  await log.ensureTopic(topic, 1, { compacted: true })
  const db: RootDatabase = open({ path: options.dir, compression: false })

  const waiters = new Map<string, Waiter>()
  const offsetWaiters = new Set<{ offset: number; resolve(): void }>()
  let applied = (db.get(P.offset) as number | undefined) ?? 0
  /** Where the view must be before the store is handed out: the topic's end at start. */
  let end = (await log.endOffsets(topic)).get(0) ?? 0

  if (db.get(P.offset) === undefined && hasTenantData(db)) {
    const entries = tenantEntries(db)
    const cmd: TenantCommand = { op: 'import', entries, by: SYSTEM_ACTORS.upgradeImport, at: Date.now() }
    const [imported] = await log.append(topic, [{ key: `import-${randomUUID()}`, value: JSON.stringify(cmd), partition: 0 }])
    end = Math.max(end, imported!.offset + 1)
    db.clearSync()
    applied = 0
    logger.warn({ event: 'tenant_store_imported', entries: entries.length }, 'tenant store written before the shared topic: imported into the topic, view rebuilt from it')
  } else if (applied > end) {
    logger.warn({ event: 'tenant_view_rebuilt', viewOffset: applied, topicEnd: end }, 'tenant view is ahead of the topic (new log?): rebuilding it from the topic')
    db.clearSync()
    applied = 0
  } else if (applied > 0 && db.get(P.changeLog) === undefined) {
    logger.info({ event: 'tenant_view_rebuilt', viewOffset: applied }, 'tenant view kept before the change log: rebuilding it from the topic once, so the change log starts at the first command')
    db.clearSync()
    applied = 0
  }
  if (db.get(P.changeLog) === undefined) await db.put(P.changeLog, 1)

  function apply(rec: LogRecord): void {
    if (rec.offset < applied) return
    let cmd: TenantCommand | undefined
    try {
      cmd = JSON.parse(rec.value) as TenantCommand
    } catch (err) {
      logger.error({ reason: 'bad_tenant_record' satisfies ReasonCode, offset: rec.offset, err }, 'tenant topic record is not a command; skipped')
    }
    let result: unknown
    let refusal: unknown
    const advance = () => db.put(P.offset, rec.offset + 1)
    if (cmd) {
      const applied = applyRecorded(db, cmd, { seq: rec.offset, appendedAt: rec.timestamp, advance })
      if ('refusal' in applied) {
        refusal = applied.refusal
        if (!(refusal instanceof TenantConflictError || refusal instanceof TenantReferenceError)) {
          logger.error({ reason: 'bad_tenant_record' satisfies ReasonCode, offset: rec.offset, op: cmd.op, err: refusal }, 'tenant command failed to apply; skipped on every replica')
        }
      } else result = applied.result
    } else db.transactionSync(advance)
    applied = rec.offset + 1
    const w = waiters.get(rec.key)
    if (w) {
      waiters.delete(rec.key)
      if (refusal !== undefined) w.reject(refusal)
      else w.resolve(result)
    }
    for (const o of offsetWaiters) {
      if (applied >= o.offset) {
        offsetWaiters.delete(o)
        o.resolve()
      }
    }
  }

  function appliedPast(offset: number, what: string, waitMs = timeoutMs): Promise<void> {
    if (applied >= offset) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const o = { offset, resolve: () => (clearTimeout(timer), resolve()) }
      const timer = setTimeout(() => {
        offsetWaiters.delete(o)
        reject(new TenantUnavailableError(`${what}: the tenant view did not reach offset ${offset} of ${topic} within ${waitMs} ms`))
      }, waitMs)
      offsetWaiters.add(o)
    })
  }

  const consumer: Consumer = await log.consume({
    groupId: `adc-tenants.${randomUUID()}`,
    topic,
    fromBeginning: true,
    onBatch: async (batch) => {
      for (const rec of batch.records) apply(rec)
    },
  })
  try {
    await appliedPast(end, 'start')
  } catch (err) {
    await consumer.stop()
    db.close()
    throw err
  }
  logger.info({ topic, offset: applied }, 'tenant view caught up with the tenant topic')

  let closed = false
  async function submit(cmd: TenantCommand): Promise<unknown> {
    if (closed) throw new TenantUnavailableError('the tenant store is closed')
    const id = randomUUID()
    const outcome = new Promise<unknown>((resolve, reject) => waiters.set(id, { resolve, reject }))
    let timer: NodeJS.Timeout | undefined
    try {
      await log.append(topic, [{ key: id, value: JSON.stringify(cmd), partition: 0 }])
      return await Promise.race([
        outcome,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new TenantUnavailableError(`tenant change ${cmd.op} appended but not applied within ${timeoutMs} ms`)), timeoutMs)
        }),
      ])
    } finally {
      clearTimeout(timer)
      waiters.delete(id)
    }
  }

  /** The topic's end as read now, then this view applied up to it (bounded): a read of everything written before the call. */
  async function catchUp(waitMs: number): Promise<boolean> {
    if (closed) return false
    const target = (await log.endOffsets(topic)).get(0) ?? 0
    try {
      await appliedPast(target, 'catch-up', waitMs)
      return true
    } catch (err) {
      if (err instanceof TenantUnavailableError) return false
      throw err
    }
  }

  return createTenantStore(db, submit, async () => {
    closed = true
    await consumer.stop()
    for (const w of waiters.values()) w.reject(new TenantUnavailableError('the tenant store closed'))
    waiters.clear()
    await db.close()
  }, catchUp)
}
