import { chTime, type Channel, type ReasonCode } from '@adc/schemas'
import type { ClickHouseClient } from '@clickhouse/client'
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { monotonicFactory } from 'ulid'
import type { TenantStore } from '../tenants/tenant-store.js'
import { addDays, DAY_MS, dayOf, dayStart, daysBetween } from './days.js'
import { ATTRIBUTION_RULES, DAY_CLOSE_HORIZON_MS } from '../rules/rules.js'
import { classifyDayWithMarks } from './final-join.js'
import { countDayEvents, scoreDay } from './reprocess.js'
import { ivtModel, type IvtModel } from '../ivt/models/index.js'
import { JobStoreUnavailableError, openLocalJobStore, type JobStore, type PromoteRequest } from './job-store.js'
import { scheduledJobId, SOLE_LEASE, type Lease } from './lease.js'
import { buildLines, createSnapshotStore, type SnapshotStore, type SnapshotVersion } from './snapshots.js'
import type { DayExports } from './exports.js'

/**
 * Billing and reprocess jobs: recorded in a job store (job-store.ts: this process's LMDB, or a
 * compacted topic on the log every replica of a fleet folds into its view) before they are
 * acknowledged, and run one at a time by the holder of the billing lease alone (lease.ts; always
 * held in one process), so snapshot versions of a day are assigned by one writer. A job submitted
 * on any replica is run by the holder; a queued or interrupted job is resumed by whichever replica
 * holds the lease next. A billing job closes a day into a new `final` snapshot version; a reprocess
 * job writes `candidate` versions for a window with another IVT model, which become final only by an
 * explicit promote (carried out by the holder too).
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
  /** Failed only: the reason code of the failure (schemas/src/reasons.ts), when it has one. */
  errorReason?: ReasonCode
  /** Snapshot version written per day. */
  versions: Record<string, number>
  /** Reprocess only: final versions created by promotion, per day. */
  promotedVersions?: Record<string, number>
  promotedAt?: number
  /** Reprocess only: the admin whose promote made the candidates final (what is billed changed on their word). */
  promotedBy?: string
  /** Reprocess only: the promote request the promotion carried out (job-store.ts). */
  promoteRequest?: string
  /** Reprocess only: the attribution rule version the days are rebuilt with (rules/rules.ts). */
  attributionVersion?: string
  /** Events received at or after this time (epoch ms) are left for a later version: the watermark when the job started. */
  receivedBefore?: number
  /** Reprocess only: raw events scored by the model so far, and the events of the range when it started. */
  events?: { scored: number; total: number }
  /**
   * Billing only: per day closed after a promoted reprocess, the IVT model (and attribution rules) it
   * kept from the final version `from` instead of the stream's. Recorded before the day's version
   * is written, so a later close of the day finds the rules of this job's version here.
   */
  kept?: Record<string, KeptRules>
  /**
   * Per day, per log partition: the newest `processed_at` (epoch ms) among the day's rows the
   * version read (classifyDayWithMarks). A row of the day written with a newer one was not in the
   * version, even when its batch was built before the job started: the schedule closes the day again.
   */
  marks?: Record<string, Record<string, number>>
}

export interface KeptRules {
  modelVersion: string
  /** Absent: the default attribution windows. */
  attributionVersion?: string
  /** The final version whose rules were kept. */
  from: number
}

/** The IVT model the stream applied (the verdict stored on each raw row). */
export const STREAM_MODEL = 'current'

/**
 * The smallest of each log partition's newest edge receive time in events_raw over the last three
 * days (partitions silent that long do not hold it back; none at all: `now`): every event received
 * before it is written.
 */
export async function processedWatermark(client: ClickHouseClient, database: string, now: number): Promise<number> {
  const rs = await client.query({
    query: `SELECT toUnixTimestamp64Milli(min(m)) AS wm, count() AS parts FROM (
        SELECT log_partition, max(received_at) AS m FROM ${database}.events_raw
        WHERE received_at >= {since:DateTime64(3, 'UTC')} AND received_at <= {now:DateTime64(3, 'UTC')} GROUP BY log_partition)`,
    query_params: { since: chTime(now - 3 * DAY_MS), now: chTime(now) },
    format: 'JSONEachRow',
  })
  const [row] = await rs.json<{ wm: number | string; parts: number | string }>()
  // Nothing received for three days: nothing is in flight either.
  return Number(row?.parts ?? 0) > 0 ? Number(row!.wm) : now
}

export class JobStateError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'JobStateError'
  }
}

/**
 * A promote this replica cannot carry out (no lease) and the lease holder did not carry out in time:
 * no holder alive, or one that refused or did not see the request. Retriable; nothing was promoted
 * by this call (the request stays on the store, a later holder may still carry it out).
 */
export class BillingExecutorUnavailableError extends Error {
  readonly reason = 'billing_executor_unavailable' as const
  readonly retriable = true
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BillingExecutorUnavailableError'
  }
}

/**
 * A job names an IVT model or attribution rule version that is not registered (any more): it fails
 * rather than closing the day with other rules.
 */
class UnknownReferenceError extends Error {
  readonly reason = 'unknown_reference' as const satisfies ReasonCode
  constructor(message: string) {
    super(message)
    this.name = 'UnknownReferenceError'
  }
}

/** How one day of a job is judged: the model scoring it (none: the stream's verdicts) and the attribution windows. */
interface DayRules {
  model?: IvtModel
  windowsMs?: Readonly<Record<Channel, number>>
  /** Written on the snapshot version. */
  modelVersion: string
  /** Appended to the version's reason. */
  note: string
  kept?: KeptRules
}

/** This replica lost the billing lease while running a job: it stops, the next holder resumes the job. */
class LeaseLostError extends Error {
  constructor() {
    super('the billing lease moved to another replica')
    this.name = 'LeaseLostError'
  }
}

export interface BillingJobsOptions {
  client: ClickHouseClient
  database: string
  tenants: Pick<TenantStore, 'getCampaign'>
  /** The registered IVT models by version (tests name a registry of their own). @default ivtModel (ivt/models) */
  ivtModels?: (version: string) => IvtModel | undefined
  /** LMDB directory for job records this process alone sees (openLocalJobStore); or give `store`. */
  dir?: string
  /** The job records, e.g. shared by a fleet through the log (openSharedJobStore); the caller closes it. */
  store?: JobStore
  logger: Logger
  clock?: () => number
  /**
   * How long after UTC midnight the scheduled close of the previous day runs (a version marked
   * incomplete); the day is closed again once the watermark passed its end plus `closeHorizonMs`, and
   * again whenever events of it arrive or change after that. @default 30 min
   */
  dailyGraceMs?: number
  /** @default DAY_CLOSE_HORIZON_MS (24 h of edge lateness plus the log-delay margin) */
  closeHorizonMs?: number
  /** How many past days the automatic close watches for late events. @default 3 */
  closeLookbackDays?: number
  /**
   * The processing watermark (epoch ms): every event received before it is in events_raw.
   * @default the smallest of each log partition's newest receive time in events_raw over the last days, capped by the clock
   */
  watermark?: () => Promise<number>
  /** How often the automatic T+1 check runs once `start()`ed. @default 5 min */
  dailyCheckMs?: number
  /** Raw events scored per written batch of a reprocess. @default 50_000 */
  reprocessBatchSize?: number
  /** Only the holder runs the T+1 scheduler and the jobs (one replica among several, lease.ts). @default always held */
  lease?: Lease
  /** How often a started holder looks for queued or interrupted jobs besides the store's change notices. @default 1000 */
  jobPollMs?: number
  /** How long a promote on a replica without the lease waits for the holder to carry it out. @default 60_000 */
  promoteTimeoutMs?: number
  /**
   * The reconcile export files (exports.ts): each final version a job or a promotion writes gets its
   * files written right after it is stored, on the holder. A failure is logged (export_write_failed)
   * and never fails the close: the listing writes missing files on its first read. @default none
   */
  exports?: Pick<DayExports, 'publish'>
}

export function createBillingJobs(options: BillingJobsOptions) {
  const { client, database, tenants, logger } = options
  const clock = options.clock ?? Date.now
  const graceMs = options.dailyGraceMs ?? 30 * 60_000
  const horizonMs = options.closeHorizonMs ?? DAY_CLOSE_HORIZON_MS
  const lookbackDays = options.closeLookbackDays ?? 3
  const watermark = async (): Promise<number> => Math.min(clock(), await (options.watermark ?? (() => processedWatermark(client, database, clock())))())
  const lease = options.lease ?? SOLE_LEASE
  if (!options.store && !options.dir) throw new Error('createBillingJobs needs `store` or `dir`')
  const store: JobStore = options.store ?? openLocalJobStore(options.dir!)
  const snapshots: SnapshotStore = createSnapshotStore({ client, database })
  // Monotonic, so job ids sort in submission order even within one millisecond (list() relies on it).
  const nextId = monotonicFactory()
  const queue: string[] = []
  /** The job this replica is running now. */
  let current: string | undefined
  /** Jobs whose promotion this replica is carrying out now. */
  const promoting = new Set<string>()
  /** Promote requests this replica found the job could not take (not retried). */
  const refused = new Set<string>()
  let running: Promise<void> | undefined
  let lock: Promise<unknown> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  let poll: NodeJS.Timeout | undefined
  let stopped = false
  let closed = false

  /** Serialises everything that assigns snapshot versions (job days and promotions). */
  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = lock.then(fn, fn)
    lock = next.catch(() => undefined)
    return next
  }

  /** Writes the export files of a final version just stored; a failure leaves them to the listing's lazy write. */
  async function publishExports(day: string, version: number, log: Logger): Promise<void> {
    if (!options.exports) return
    try {
      await options.exports.publish(day, version)
    } catch (err) {
      log.warn({ err, reason: 'export_write_failed', day, version }, 'export files of the version not written; the first listing writes them')
    }
  }

  const get = (id: string) => store.get(id)
  /** Records the job's state; only while this replica holds the lease (the one writer of job state). */
  async function save(job: Job): Promise<void> {
    if (!lease.held()) throw new LeaseLostError()
    await store.update(structuredClone(job))
  }

  function list(limit = 100): Job[] {
    return store.list(limit)
  }

  function enqueue(id: string): void {
    if (current !== id && !queue.includes(id)) queue.push(id)
  }

  /** On the holder: queues every queued or interrupted job and carries out pending promotions. */
  function resume(): void {
    if (stopped || !lease.held()) return
    for (const job of store.active()) enqueue(job.id)
    for (const request of store.promoteRequests()) carryOut(request)
    kick()
  }

  // A job submitted or a promotion requested on any replica reaches the holder here.
  store.onChange((change) => {
    if (stopped || !lease.held()) return
    if (change.kind === 'promote') carryOut(change.request)
    else if (change.job.status === 'queued') {
      enqueue(change.job.id)
      kick()
    }
  })

  async function submit(input: Parameters<typeof submitJob>[0]): Promise<Job> {
    return (await submitJob(input)).job
  }

  async function submitJob(input: { kind: JobKind; days: string[]; modelVersion?: string; attributionVersion?: string; reason?: string; requestedBy: string; id?: string }): Promise<{ job: Job; created: boolean }> {
    const job: Job = {
      id: input.id ?? nextId(clock()),
      kind: input.kind,
      status: 'queued',
      progress: 0,
      days: input.days,
      modelVersion: input.modelVersion ?? STREAM_MODEL,
      reason: input.reason ?? (input.kind === 'billing' ? `manual close by ${input.requestedBy}` : ''),
      requestedBy: input.requestedBy,
      ...(input.attributionVersion ? { attributionVersion: input.attributionVersion } : {}),
      createdAt: clock(),
      versions: {},
    }
    // A known id (a scheduled close submitted again) gets the job it already names, not a second one.
    const stored = await store.submit(job)
    if (stored.created && lease.held() && !stopped) {
      enqueue(job.id)
      kick()
    }
    return stored
  }

  function kick(): void {
    if (running || stopped || !lease.held()) return
    running = drain().finally(() => {
      running = undefined
      if (queue.length > 0 && !stopped) kick()
    })
  }

  async function drain(): Promise<void> {
    while (queue.length > 0 && !stopped && lease.held()) {
      const id = queue.shift()!
      current = id
      try {
        await exclusive(async () => {
          // Read inside the lock: the state the previous run left.
          const job = get(id)
          if (job && (job.status === 'queued' || job.status === 'running')) await runJob(job)
        })
      } finally {
        current = undefined
      }
    }
  }

  const models = options.ivtModels ?? ivtModel

  function attributionWindows(version: string | undefined): Readonly<Record<Channel, number>> | undefined {
    if (!version) return undefined
    const rules = ATTRIBUTION_RULES.get(version)
    if (!rules) throw new UnknownReferenceError(`no attribution rules ${version}`)
    return rules.windowsMs
  }

  /**
   * The rules a job judges `day` with. A reprocess: its model and attribution rules. A billing close:
   * the stream's verdicts with the default windows, unless the day's latest final version came from
   * a promoted reprocess (its model is not the stream's; or from a close that kept one): then that
   * model, and the attribution rules the job that wrote it names (its job record gone: the default
   * windows, said in the reason), so a later close never reverts what finance promoted.
   */
  /**
   * The job that wrote final version `v` of `day` (gone from the store: undefined) and the attribution
   * rules it judged the day with: a promoted reprocess's own, or those a later close kept.
   */
  function promotedRules(v: SnapshotVersion, day: string): { source: Job | undefined; rules: { attributionVersion?: string } | undefined } {
    const source = get(v.jobId)
    return { source, rules: source?.kind === 'reprocess' ? { attributionVersion: source.attributionVersion } : source?.kept?.[day] }
  }

  async function dayRules(job: Job, day: string): Promise<DayRules> {
    if (job.kind === 'reprocess') {
      const model = models(job.modelVersion)
      if (!model) throw new UnknownReferenceError(`no IVT model ${job.modelVersion}`)
      return { model, windowsMs: attributionWindows(job.attributionVersion), modelVersion: job.modelVersion, note: '' }
    }
    const windowsMs = attributionWindows(job.attributionVersion)
    const latest = await snapshots.latestFinal(day)
    if (!latest || latest.modelVersion === STREAM_MODEL) return { windowsMs, modelVersion: job.modelVersion, note: '' }
    const model = models(latest.modelVersion)
    if (!model) {
      throw new UnknownReferenceError(
        `the final v${latest.version} of ${day} was computed with IVT model ${latest.modelVersion}, which is not registered: the day is not closed with another model`,
      )
    }
    const { source, rules } = promotedRules(latest, day)
    const attributionVersion = rules?.attributionVersion
    const kept: KeptRules = { modelVersion: model.version, ...(attributionVersion ? { attributionVersion } : {}), from: latest.version }
    const unknownRules = !source
      ? '; that job is gone from the job store, so its attribution rules are unknown: default attribution windows'
      : !rules
        ? '; that job records no attribution rules for the day: default attribution windows'
        : ''
    const note = `; kept the promoted IVT model ${model.version}${attributionVersion ? ` and attribution rules ${attributionVersion}` : ''} of final v${latest.version} (job ${latest.jobId})${unknownRules}`
    return { model, windowsMs: attributionWindows(attributionVersion), modelVersion: model.version, note, kept }
  }

  /** Whether `day`'s rules for `job` resolve now (dayRules names no unregistered version). */
  async function rulesResolve(job: Job, day: string): Promise<boolean> {
    try {
      await dayRules(job, day)
      return true
    } catch (err) {
      if (err instanceof UnknownReferenceError) return false
      throw err
    }
  }

  async function runJob(job: Job): Promise<void> {
    const started = clock()
    job.status = 'running'
    job.startedAt = started
    await save(job)
    const log = logger.child({ jobId: job.id, kind: job.kind })
    try {
      // The cut-off is fixed once per job (a resumed job keeps it); whatever is written after it
      // makes the schedule close the day again (changedSince).
      if (job.receivedBefore === undefined) {
        job.receivedBefore = started
        await save(job)
      }
      const cutoff = job.receivedBefore
      const wm = await watermark()
      const existing = new Map<string, number>()
      for (const day of job.days) {
        // A job resumed after a crash may already have written some days: keep those versions.
        const v = (await snapshots.versions(day)).find((s) => s.jobId === job.id)
        if (v) existing.set(day, v.version)
      }
      for (const [i, day] of job.days.entries()) {
        const done = existing.get(day)
        // Versions are assigned by the lease holder alone: a replica that lost it writes none.
        if (!lease.held()) throw new LeaseLostError()
        if (done !== undefined) {
          job.versions[day] = done
          // Written before an interruption, perhaps without its files.
          if (job.kind === 'billing') await publishExports(day, done, log)
        } else {
          // Decided again on a resume (nothing of the day was written): the same latest final, or one
          // promoted in between, whose rules the close then keeps.
          const { model, windowsMs, modelVersion, note, kept } = await dayRules(job, day)
          if (kept || job.kept?.[day]) {
            // Before the version is written: a close resumed after writing it finds the rules here.
            const { [day]: _was, ...others } = job.kept ?? {}
            job.kept = kept ? { ...others, [day]: kept } : others
            await save(job)
          }
          // With a model: what its scoring read. A row written after that has no decision of the
          // model; it is left out of this version (late) and the next close scores it.
          let scoredThrough: Record<string, number> | undefined
          if (model) {
            // Score the day's stored raw events with the model, in bounded batches (progress per batch):
            // the whole day, also for a close keeping a promoted model (what was received since the
            // reprocess was never scored by it, and its stateful rules count over the day). The work
            // table and the insert tokens carry this job's id, never the reprocess's.
            const total = await countDayEvents(client, database, day)
            const before = job.events?.scored ?? 0
            job.events = { scored: before, total: (job.events?.total ?? 0) + total }
            scoredThrough = (await scoreDay({
              client, database, day, model, jobId: job.id, batchSize: options.reprocessBatchSize, clock, windowsMs,
              onBatch: async (scored) => {
                job.events = { scored: before + scored, total: job.events!.total }
                job.progress = (i + 0.9 * Math.min(1, scored / Math.max(1, total))) / job.days.length
                await save(job)
              },
            })).marks
          }
          const { groups, marks } = await classifyDayWithMarks(client, {
            database,
            day,
            modelVersion: model?.version,
            receivedBefore: cutoff,
            windowsMs,
            scoredThrough,
          })
          job.progress = (i + 0.95) / job.days.length
          // Before the version is written: the schedule compares what is written later with these.
          job.marks = { ...job.marks, [day]: scoredThrough ?? marks }
          await save(job)
          const lines = buildLines(groups, tenants)
          job.versions[day] = await snapshots.write(day, lines, {
            status: job.kind === 'billing' ? 'final' : 'candidate',
            jobId: job.id,
            modelVersion,
            createdAt: started,
            reason: job.reason + note,
            supersedes: job.kind === 'billing' ? ((await snapshots.latestFinal(day))?.version ?? 0) : 0,
            receivedBefore: cutoff,
            complete: isComplete(day, wm, started),
          })
          if (job.kind === 'billing') await publishExports(day, job.versions[day]!, log)
        }
        job.progress = (i + 1) / job.days.length
        await save(job)
      }
      job.status = 'done'
      job.finishedAt = clock()
      await save(job)
      log.info({ days: job.days, versions: job.versions, ms: job.finishedAt - started }, 'job done')
    } catch (err) {
      if (err instanceof LeaseLostError || !lease.held()) {
        log.warn({ days: job.days, versions: job.versions }, 'billing lease lost during the job: left to the next holder, which resumes it')
        return
      }
      job.status = 'failed'
      job.error = err instanceof Error ? err.message : String(err)
      if (err instanceof UnknownReferenceError) job.errorReason = err.reason
      job.finishedAt = clock()
      await save(job).catch((e: unknown) => log.error({ err: e }, 'could not record the failed job'))
      log.error({ err, ...(job.errorReason ? { reason: job.errorReason } : {}) }, 'job failed')
    }
  }

  function promotable(id: string): Job {
    const job = get(id)
    if (!job) throw new JobStateError(`no job ${id}`)
    if (job.kind !== 'reprocess') throw new JobStateError('only reprocess jobs are promoted')
    if (job.status !== 'done') throw new JobStateError(`job is ${job.status}, not done`)
    if (job.promotedVersions) throw new JobStateError('job was already promoted')
    return job
  }

  /**
   * Makes a done reprocess job's candidates final as new versions. Promotion assigns versions, so
   * the lease holder carries it out: here when this replica holds the lease, otherwise by a promote
   * request on the job store, answered once the holder recorded the promotion (a concurrent promote
   * of the same job gets a JobStateError).
   */
  async function promote(id: string, by: string): Promise<Job> {
    promotable(id)
    if (lease.held()) return exclusive(() => promoteNow(id, by, randomUUID()))
    const request = randomUUID()
    const accepted = await store.requestPromote({ jobId: id, request, by }).catch((err: unknown) => {
      if (err instanceof JobStoreUnavailableError) throw new BillingExecutorUnavailableError(`promotion of ${id} could not be requested: ${err.message}`, { cause: err })
      throw err
    })
    if (!accepted) throw new JobStateError('job was already promoted')
    const deadline = Date.now() + (options.promoteTimeoutMs ?? 60_000)
    for (;;) {
      const job = get(id)
      if (job?.promotedVersions) {
        if (job.promoteRequest !== request) throw new JobStateError('job was already promoted')
        return job
      }
      if (Date.now() > deadline) throw new BillingExecutorUnavailableError(`promotion of ${id} requested but not carried out by the billing lease holder in time`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  /** On the holder: carries out a promote request recorded on the store (once per job at a time). */
  function carryOut(request: PromoteRequest): void {
    if (promoting.has(request.jobId) || refused.has(request.request)) return
    promoting.add(request.jobId)
    exclusive(() => promoteNow(request.jobId, request.by, request.request))
      .catch((err: unknown) => {
        // A job that cannot be promoted stays so: not retried (a failure of ClickHouse or of the lease is).
        if (err instanceof JobStateError) refused.add(request.request)
        logger.error({ err, jobId: request.jobId }, 'promote request not carried out')
      })
      .finally(() => promoting.delete(request.jobId))
  }

  async function promoteNow(id: string, by: string, request: string): Promise<Job> {
    const job = promotable(id)
    const promoted: Record<string, number> = {}
    for (const day of job.days) {
      const from = job.versions[day]
      if (from === undefined) continue
      if (!lease.held()) throw new LeaseLostError()
      const latest = await snapshots.latestFinal(day)
      promoted[day] = await snapshots.promote(day, from, job.id, clock(), {
        reason: `promoted reprocess ${job.id} (${job.modelVersion}${job.attributionVersion ? `, ${job.attributionVersion}` : ''}): ${job.reason}`,
        supersedes: latest?.version ?? 0,
      })
    }
    job.promotedVersions = promoted
    job.promotedAt = clock()
    job.promotedBy = by
    job.promoteRequest = request
    await save(job)
    logger.info({ jobId: id, by, promoted }, 'reprocess promoted')
    for (const [day, version] of Object.entries(promoted)) await publishExports(day, version, logger.child({ jobId: id }))
    return job
  }

  /**
   * Closes past days, one job per call (the schedule calls it every few minutes):
   * - a day without a final version, once `dailyGraceMs` after its end: the scheduled close, marked
   *   incomplete unless the watermark already passed the day's end plus the lateness horizon;
   * - an incomplete version, once the watermark passed that horizon: the complete close;
   * - a complete version, when events of the day were written after it, or received after its
   *   cut-off, and the watermark has reached them: a re-close.
   * Each close is a new version with the version it supersedes and its reason; none is edited.
   */
  let ticking: Promise<unknown> = Promise.resolve()
  /** Serialised, so two ticks of one process cannot both submit. */
  function dailyTick(): Promise<Job | undefined> {
    const next = ticking.then(dailyTickOnce, dailyTickOnce)
    ticking = next.catch(() => undefined)
    return next
  }

  /** One pass of the schedule, on the lease holder only (one replica among several, lease.ts). */
  async function dailyTickOnce(): Promise<Job | undefined> {
    if (!(options.lease ?? SOLE_LEASE).held()) return undefined
    const now = clock()
    const today = dayOf(now)
    let wm: number | undefined
    for (let back = lookbackDays; back >= 1; back--) {
      const day = addDays(today, -back)
      const end = dayStart(day) + DAY_MS
      if (now < end + graceMs) continue
      // A close of this day already queued or running (submitted on any replica): wait for it.
      if (store.active().some((j) => j.kind === 'billing' && j.days.includes(day))) continue
      const versions = await snapshots.versions(day)
      const latest = versions.filter((v) => v.status === 'final').at(-1)
      if (!latest) {
        wm ??= await watermark()
        const complete = isComplete(day, wm, now)
        const job = await closeJob(day, complete ? 'close: the watermark passed the day end plus the lateness horizon' : 'scheduled close (T+1): incomplete until the watermark passes the day end plus the lateness horizon', 0)
        if (job) return job
        continue
      }
      wm ??= await watermark()
      if (!latest.complete) {
        const job = isComplete(day, wm, now) ? await closeJob(day, `close: the watermark passed the day end plus the lateness horizon; supersedes the scheduled close v${latest.version}`, latest.version) : undefined
        if (job) return job
        continue
      }
      // A promoted version's figures are its candidate's, computed when the reprocess ran, not when
      // it was promoted: what was written since then is not in it either.
      const computedAt = versions.find((v) => v.status === 'candidate' && v.jobId === latest.jobId)?.createdAt ?? latest.createdAt
      const changed = await changedSince(day, latest.receivedBefore, Math.min(computedAt, latest.createdAt), wm, get(latest.jobId)?.marks?.[day])
      const job = changed > 0 ? await closeJob(day, `re-close: ${changed} events of the day were received or judged after v${latest.version}`, latest.version) : undefined
      if (job) return job
    }
    return undefined
  }

  /**
   * Submits one close of `day`, the one that supersedes version `supersedes` (0: the first): recorded
   * on the log first and under a job id fixed by (day, supersedes), so a replica that gets the lease
   * later, with or without this one's ClickHouse, or a retry, never closes the same state twice.
   */
  async function closeJob(day: string, reason: string, supersedes: number): Promise<Job | undefined> {
    const key = supersedes === 0 ? day : `${day}:v${supersedes}`
    if (!(await (options.lease ?? SOLE_LEASE).claim(`close:${key}`, clock()))) return undefined
    const id = scheduledJobId(day, supersedes === 0 ? '' : `v${supersedes}`)
    const known = get(id)
    if (known) {
      // Submitted before (a claim retaken after its holder died): that job stands, no second one;
      // one that failed is queued again under its id (it reuses any version it wrote).
      if (known.status !== 'failed') return undefined
      // A close that failed for a version no longer registered would fail again: it stands, and the
      // schedule goes on to the other days, until the day's rules resolve (the version registered
      // again by a deploy, or another version of the day promoted): then it is queued again.
      if (known.errorReason === 'unknown_reference' && !(await rulesResolve(known, day))) return undefined
      const { error: _e, errorReason: _er, startedAt: _s, finishedAt: _f, receivedBefore: _r, events: _ev, ...rest } = known
      const retry: Job = { ...rest, status: 'queued', progress: 0, reason, createdAt: clock(), versions: {} }
      await save(retry)
      enqueue(id)
      kick()
      return retry
    }
    const { job, created } = await submitJob({ kind: 'billing', days: [day], requestedBy: 'scheduler', reason, id })
    return created ? job : undefined
  }

  /**
   * A day is complete once the watermark passed its end plus the horizon, or, as a backstop for
   * partitions that went silent (their newest event holds the watermark back), a day after that.
   */
  function isComplete(day: string, wm: number, now: number): boolean {
    const due = dayStart(day) + DAY_MS + horizonMs
    return wm >= due || now >= due + DAY_MS
  }

  /**
   * Rows of the day written after a version was computed, or received after its cut-off, that the
   * watermark has reached. "Written after" is judged per log partition against the newest
   * `processed_at` the version read (`marks`, when its job recorded them), so a row whose batch was
   * built before the job started but reached ClickHouse after the version read the day counts too;
   * without marks, against the version's time.
   */
  async function changedSince(day: string, receivedBefore: number, createdAt: number, wm: number, marks?: Record<string, number>): Promise<number> {
    const start = dayStart(day)
    const parts = Object.keys(marks ?? {}).map(Number)
    const rs = await client.query({
      query: `SELECT count() AS n FROM ${database}.events_raw
        WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
          AND (received_at >= {cutoff:DateTime64(3, 'UTC')} OR processed_at >= {created:DateTime64(3, 'UTC')}
            ${marks ? `OR indexOf({parts:Array(UInt32)}, log_partition) = 0 OR toUnixTimestamp64Milli(processed_at) > {marks:Array(Int64)}[indexOf({parts:Array(UInt32)}, log_partition)]` : ''})
          AND received_at < {wm:DateTime64(3, 'UTC')}`,
      query_params: {
        start: chTime(start), end: chTime(start + DAY_MS), cutoff: chTime(receivedBefore), created: chTime(createdAt), wm: chTime(wm),
        parts, marks: parts.map((p) => marks![p]!),
      },
      format: 'JSONEachRow',
    })
    const [row] = await rs.json<{ n: number | string }>()
    return Number(row?.n ?? 0)
  }

  /**
   * The rules a final version of `day` was computed with, as a reader re-derives its verdicts (the
   * reconcile report): its IVT model when not the stream's, and the attribution windows of the job
   * that wrote it (a promoted reprocess's, or those a later close kept); default windows when the
   * job is gone or named none.
   */
  function rulesOf(v: SnapshotVersion, day: string): { modelVersion?: string; windowsMs?: Readonly<Record<Channel, number>> } {
    if (v.modelVersion === STREAM_MODEL) return {}
    const attributionVersion = promotedRules(v, day).rules?.attributionVersion
    const rules = attributionVersion ? ATTRIBUTION_RULES.get(attributionVersion) : undefined
    return { modelVersion: v.modelVersion, ...(rules ? { windowsMs: rules.windowsMs } : {}) }
  }

  return {
    snapshots,
    get,
    list,
    rulesOf,
    submitBilling: (day: string, requestedBy: string) => submit({ kind: 'billing', days: [day], requestedBy }),
    submitReprocess: (input: { from: string; to: string; reason: string; modelVersion: string; attributionVersion?: string; requestedBy: string }) =>
      submit({
        kind: 'reprocess', days: daysBetween(input.from, input.to), modelVersion: input.modelVersion,
        attributionVersion: input.attributionVersion, reason: input.reason, requestedBy: input.requestedBy,
      }),
    promote,
    dailyTick,
    /**
     * Resumes queued or interrupted jobs (whenever this replica holds the lease: now, when it gets
     * it, and every `jobPollMs`) and starts the T+1 schedule.
     */
    start(): void {
      stopped = false
      resume()
      void lease.whenHeld().then(resume)
      poll = setInterval(resume, options.jobPollMs ?? 1000)
      poll.unref()
      timer = setInterval(() => {
        dailyTick().catch((err) => logger.error({ err }, 'daily billing check failed'))
      }, options.dailyCheckMs ?? 5 * 60_000)
      timer.unref()
    },
    /** Resolves when no job is queued or running (tests, graceful stop). */
    async idle(): Promise<void> {
      while (running) await running
    },
    /** Stops running jobs (the current one finishes first); closes the store when it opened it (`dir`). */
    async stop(): Promise<void> {
      stopped = true
      if (timer) clearInterval(timer)
      if (poll) clearInterval(poll)
      while (running) await running
      await lock
      if (!options.store && !closed) {
        closed = true
        await store.close()
      }
    },
  }
}

export type BillingJobs = ReturnType<typeof createBillingJobs>
