import type { ClickHouseClient } from '@clickhouse/client'
import { open, type RootDatabase } from 'lmdb'
import type { Logger } from 'pino'
import { monotonicFactory } from 'ulid'
import type { TenantStore } from '../tenants/tenant-store.js'
import { addDays, dayOf, dayStart, daysBetween } from './days.js'
import { classifyDay } from './final-join.js'
import { scheduledJobId, SOLE_LEASE, type Lease } from './lease.js'
import { buildLines, createSnapshotStore, type SnapshotStore } from './snapshots.js'

/**
 * Billing and reprocess jobs: persisted in LMDB before they are acknowledged, run one at a time in
 * this process (so snapshot versions of a day are assigned without races), resumed after a restart.
 * A billing job closes a day into a new `final` snapshot version; a reprocess job writes `candidate`
 * versions for a window with another IVT model, which become final only by an explicit promote.
 */

export type JobStatus = 'queued' | 'running' | 'done' | 'failed'
export type JobKind = 'billing' | 'reprocess'

export interface Job {
  id: string
  kind: JobKind
  status: JobStatus
  /** 0..1 */
  progress: number
  days: string[]
  modelVersion: string
  reason: string
  requestedBy: string
  createdAt: number
  startedAt?: number
  finishedAt?: number
  error?: string
  /** Snapshot version written per day. */
  versions: Record<string, number>
  /** Reprocess only: final versions created by promotion, per day. */
  promotedVersions?: Record<string, number>
  promotedAt?: number
}

/** The IVT model the stream applied (the verdict stored on each raw row). */
export const STREAM_MODEL = 'current'

export class JobStateError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'JobStateError'
  }
}

export interface BillingJobsOptions {
  client: ClickHouseClient
  database: string
  tenants: Pick<TenantStore, 'getCampaign'>
  /** LMDB directory for the job records. */
  dir: string
  logger: Logger
  clock?: () => number
  /** How long after UTC midnight the automatic T+1 job waits for late events. @default 30 min */
  dailyGraceMs?: number
  /** How often the automatic T+1 check runs once `start()`ed. @default 5 min */
  dailyCheckMs?: number
  /** Only the holder runs the T+1 scheduler (one replica among several, lease.ts). @default always held */
  lease?: Lease
}

export function createBillingJobs(options: BillingJobsOptions) {
  const { client, database, tenants, logger } = options
  const clock = options.clock ?? Date.now
  const graceMs = options.dailyGraceMs ?? 30 * 60_000
  const db: RootDatabase = open({ path: options.dir, compression: false })
  const snapshots: SnapshotStore = createSnapshotStore({ client, database })
  // Monotonic, so job ids sort in submission order even within one millisecond (list() relies on it).
  const nextId = monotonicFactory()
  const queue: string[] = []
  let running: Promise<void> | undefined
  let lock: Promise<unknown> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  let stopped = false

  /** Serialises everything that assigns snapshot versions (job days and promotions). */
  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = lock.then(fn, fn)
    lock = next.catch(() => undefined)
    return next
  }

  const get = (id: string) => db.get(`job:${id}`) as Job | undefined
  const save = (job: Job) => db.put(`job:${job.id}`, job)

  function list(limit = 100): Job[] {
    const out: Job[] = []
    for (const { value } of db.getRange({ start: 'job:\uffff', end: 'job:', reverse: true, limit })) out.push(value as Job)
    return out
  }

  async function submit(input: { kind: JobKind; days: string[]; modelVersion?: string; reason?: string; requestedBy: string; id?: string }): Promise<Job> {
    const job: Job = {
      id: input.id ?? nextId(clock()),
      kind: input.kind,
      status: 'queued',
      progress: 0,
      days: input.days,
      modelVersion: input.modelVersion ?? STREAM_MODEL,
      reason: input.reason ?? (input.kind === 'billing' ? 'daily close' : ''),
      requestedBy: input.requestedBy,
      createdAt: clock(),
      versions: {},
    }
    await save(job)
    queue.push(job.id)
    kick()
    return job
  }

  function kick(): void {
    if (running || stopped) return
    running = drain().finally(() => {
      running = undefined
      if (queue.length > 0 && !stopped) kick()
    })
  }

  async function drain(): Promise<void> {
    while (queue.length > 0 && !stopped) {
      const id = queue.shift()!
      const job = get(id)
      if (!job || job.status === 'done' || job.status === 'failed') continue
      await exclusive(() => runJob(job))
    }
  }

  async function runJob(job: Job): Promise<void> {
    const started = clock()
    job.status = 'running'
    job.startedAt = started
    await save(job)
    const log = logger.child({ jobId: job.id, kind: job.kind })
    try {
      const existing = new Map<string, number>()
      for (const day of job.days) {
        // A job resumed after a crash may already have written some days: keep those versions.
        const v = (await snapshots.versions(day)).find((s) => s.jobId === job.id)
        if (v) existing.set(day, v.version)
      }
      for (const [i, day] of job.days.entries()) {
        const done = existing.get(day)
        if (done !== undefined) {
          job.versions[day] = done
        } else {
          const groups = await classifyDay(client, {
            database,
            day,
            modelVersion: job.modelVersion === STREAM_MODEL ? undefined : job.modelVersion,
            receivedBefore: started,
          })
          job.progress = (i + 0.5) / job.days.length
          await save(job)
          const lines = buildLines(groups, tenants)
          job.versions[day] = await snapshots.write(day, lines, {
            status: job.kind === 'billing' ? 'final' : 'candidate',
            jobId: job.id,
            modelVersion: job.modelVersion,
            createdAt: started,
          })
        }
        job.progress = (i + 1) / job.days.length
        await save(job)
      }
      job.status = 'done'
      job.finishedAt = clock()
      await save(job)
      log.info({ days: job.days, versions: job.versions, ms: job.finishedAt - started }, 'job done')
    } catch (err) {
      job.status = 'failed'
      job.error = err instanceof Error ? err.message : String(err)
      job.finishedAt = clock()
      await save(job)
      log.error({ err }, 'job failed')
    }
  }

  async function promote(id: string, by: string): Promise<Job> {
    return exclusive(async () => {
      const job = get(id)
      if (!job) throw new JobStateError(`no job ${id}`)
      if (job.kind !== 'reprocess') throw new JobStateError('only reprocess jobs are promoted')
      if (job.status !== 'done') throw new JobStateError(`job is ${job.status}, not done`)
      if (job.promotedVersions) throw new JobStateError('job was already promoted')
      const promoted: Record<string, number> = {}
      for (const day of job.days) {
        const from = job.versions[day]
        if (from === undefined) continue
        promoted[day] = await snapshots.promote(day, from, job.id, clock())
      }
      job.promotedVersions = promoted
      job.promotedAt = clock()
      await save(job)
      logger.info({ jobId: id, by, promoted }, 'reprocess promoted')
      return job
    })
  }

  let ticking: Promise<unknown> = Promise.resolve()
  /** Serialised, so two ticks of one process cannot both submit. */
  function dailyTick(): Promise<Job | undefined> {
    const next = ticking.then(dailyTickOnce, dailyTickOnce)
    ticking = next.catch(() => undefined)
    return next
  }

  /**
   * Submits yesterday's billing job once the grace period after UTC midnight passed (T+1), on the
   * lease holder only, under the day's deterministic job id (lease.ts).
   */
  async function dailyTickOnce(): Promise<Job | undefined> {
    if (!(options.lease ?? SOLE_LEASE).held()) return undefined
    const now = clock()
    const yesterday = addDays(dayOf(now), -1)
    if (now - dayStart(dayOf(now)) < graceMs) return undefined
    if (db.get(`auto:${yesterday}`) !== undefined) return undefined
    if ((await snapshots.latestFinal(yesterday)) !== undefined) {
      await db.put(`auto:${yesterday}`, 'existing')
      return undefined
    }
    // Recorded on the log first: a replica that gets the lease later (with or without this one's
    // ClickHouse) does not close the day a second time.
    if (!(await (options.lease ?? SOLE_LEASE).claim(`close:${yesterday}`, now))) return undefined
    const job = await submit({ kind: 'billing', days: [yesterday], requestedBy: 'scheduler', reason: 'daily close (T+1)', id: scheduledJobId(yesterday) })
    await db.put(`auto:${yesterday}`, job.id)
    return job
  }

  return {
    snapshots,
    get,
    list,
    submitBilling: (day: string, requestedBy: string) => submit({ kind: 'billing', days: [day], requestedBy }),
    submitReprocess: (input: { from: string; to: string; reason: string; modelVersion: string; requestedBy: string }) =>
      submit({ kind: 'reprocess', days: daysBetween(input.from, input.to), modelVersion: input.modelVersion, reason: input.reason, requestedBy: input.requestedBy }),
    promote,
    dailyTick,
    /** Resumes queued or interrupted jobs and starts the T+1 schedule. */
    start(): void {
      stopped = false
      for (const { value } of db.getRange({ start: 'job:', end: 'job:\uffff' })) {
        const job = value as Job
        if ((job.status === 'queued' || job.status === 'running') && !queue.includes(job.id)) queue.push(job.id)
      }
      kick()
      timer = setInterval(() => {
        dailyTick().catch((err) => logger.error({ err }, 'daily billing check failed'))
      }, options.dailyCheckMs ?? 5 * 60_000)
      timer.unref()
    },
    /** Resolves when no job is queued or running (tests, graceful stop). */
    async idle(): Promise<void> {
      while (running) await running
    },
    async stop(): Promise<void> {
      stopped = true
      if (timer) clearInterval(timer)
      while (running) await running
      await db.close()
    },
  }
}

export type BillingJobs = ReturnType<typeof createBillingJobs>
