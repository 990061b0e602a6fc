import type { Logger } from 'pino'
import { Counter, type Registry } from 'prom-client'
import type { Lease } from '../billing/lease.js'
import type { ErasureRetryResult, PrivacyRetry } from '../privacy/retry.js'
import { cleanUpTable, type CleanUpResult } from './cleanup.js'
import { compactTable, type CompactionOptions, type CompactionResult } from './compact.js'
import { expireSnapshots } from './cleanup.js'
import type { LakeTable } from './table.js'

export const LAKE_UPKEEP_LEASE = 'lake-upkeep'

export interface LakeUpkeepOptions {
  lake: LakeTable
  /** Time between runs. */
  intervalMs: number
  compaction: Omit<CompactionOptions, 'now'>
  /** Clean-up's safety age (see CleanUpOptions.minAgeMs). */
  cleanupMinAgeMs: number
  /** One replica runs it: the lease holder. @default always held */
  lease?: Pick<Lease, 'held'>
  logger: Logger
  registry?: Registry
  /** Privacy erasures left pending in the lake, tried again at the start of each run (privacy/retry.ts). @default none */
  privacy?: Pick<PrivacyRetry, 'retry'>
}

export type UpkeepRun =
  | { status: 'skipped' }
  | { status: 'ok'; compaction: CompactionResult; expired: number; cleanup: CleanUpResult; erasures: ErasureRetryResult }
  | { status: 'failed'; reason: 'lake_upkeep_failed' }

/**
 * The lake's scheduled care: privacy erasures left pending first (a person's rows outrank file
 * sizes), then compaction of small data files, snapshot expiry by the table's properties, then
 * clean-up of files no remaining snapshot reaches. Runs on the lease holder only; a failed run is
 * logged (lake_upkeep_failed) and counted, and the next one starts afresh.
 */
export function createLakeUpkeep(options: LakeUpkeepOptions) {
  const { lake, logger } = options
  const log = logger.child({ component: 'lake-upkeep' })
  const runs = options.registry
    ? ((options.registry.getSingleMetric('adc_lake_upkeep_runs_total') as Counter<'result'> | undefined) ??
      new Counter({ name: 'adc_lake_upkeep_runs_total', help: 'Iceberg upkeep runs (compaction, expiry, clean-up) by result', labelNames: ['result'] as const, registers: [options.registry] }))
    : undefined
  const files = options.registry
    ? ((options.registry.getSingleMetric('adc_lake_upkeep_files_total') as Counter<'action'> | undefined) ??
      new Counter({ name: 'adc_lake_upkeep_files_total', help: 'Iceberg files compacted away, written by compaction, and deleted by clean-up', labelNames: ['action'] as const, registers: [options.registry] }))
    : undefined
  let timer: NodeJS.Timeout | undefined
  let running: Promise<UpkeepRun> | undefined

  async function run(): Promise<UpkeepRun> {
    if (options.lease && !options.lease.held()) return { status: 'skipped' }
    try {
      const erasures = options.privacy ? await options.privacy.retry() : { retried: 0, done: 0, pending: 0 }
      const compaction = await compactTable(lake, options.compaction)
      const expired = await expireSnapshots(lake)
      const cleanup = await cleanUpTable(lake, { minAgeMs: options.cleanupMinAgeMs })
      runs?.inc({ result: 'ok' })
      files?.inc({ action: 'compacted' }, compaction.removedFiles)
      files?.inc({ action: 'written' }, compaction.addedFiles)
      files?.inc({ action: 'deleted' }, cleanup.deleted.length)
      log.info({ erasures, compaction, expired: expired.length, deleted: cleanup.deleted.length, kept: cleanup.kept }, 'lake upkeep done')
      return { status: 'ok', compaction, expired: expired.length, cleanup, erasures }
    } catch (err) {
      runs?.inc({ result: 'failed' })
      log.error({ err, reason: 'lake_upkeep_failed' }, 'lake upkeep failed; the next run tries again')
      return { status: 'failed', reason: 'lake_upkeep_failed' }
    }
  }

  return {
    /** One run now (never two at once). */
    runOnce(): Promise<UpkeepRun> {
      running ??= run().finally(() => {
        running = undefined
      })
      return running
    },
    start(): void {
      timer = setInterval(() => void this.runOnce(), options.intervalMs)
      timer.unref()
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer)
      await running
    },
  }
}
