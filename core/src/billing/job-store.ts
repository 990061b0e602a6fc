import { randomUUID } from 'node:crypto'
import { open, type RootDatabase } from 'lmdb'
import type { Logger } from 'pino'
import { BILLING_JOBS_TOPIC, type ReasonCode } from '@adc/schemas'
import type { Consumer, Log, LogRecord } from '../log/log.js'
import type { Job } from './jobs.js'

/**
 * Where billing and reprocess job records live. Two implementations with one fold:
 * - `openLocalJobStore`: an LMDB directory of one core process (tests, tools, a single replica);
 * - `openSharedJobStore`: a compacted topic on the `Log` folded by every replica into its own LMDB
 *   view, so every replica serves every job of the fleet.
 *
 * The fold is the same everywhere: `submit` creates a job unless its id exists (the first record
 * wins; a second submit of a deterministic id, e.g. a scheduled close, gets the existing job back),
 * `update` replaces a job's state (written only by the executor, the billing lease holder), and
 * `promote` records a request to promote a reprocess job (the first request of a job wins).
 */
export interface JobStore {
  get(id: string): Job | undefined
  /** Newest first (job ids are ULIDs). */
  list(limit: number): Job[]
  /** Queued and running jobs, oldest first. */
  active(): Job[]
  /** Promote requests not yet carried out: job id → request. */
  promoteRequests(): PromoteRequest[]
  /** Creates the job unless its id exists; resolves with the stored job and whether this call created it. */
  submit(job: Job): Promise<{ job: Job; created: boolean }>
  /** Replaces the job's state. */
  update(job: Job): Promise<void>
  /** Records a promote request; resolves with false when the job already had one. */
  requestPromote(request: PromoteRequest): Promise<boolean>
  /** Called after every applied change (this replica's or another's), in log order. */
  onChange(listener: (change: JobChange) => void): void
  close(): Promise<void>
}

export interface PromoteRequest {
  jobId: string
  /** Unique per request: the promoted job names the request it carried out (`Job.promoteRequest`). */
  request: string
  by: string
}

export type JobChange = { kind: 'job'; job: Job } | { kind: 'promote'; request: PromoteRequest }

type JobCommand = { op: 'submit'; job: Job; nonce: string } | { op: 'update'; job: Job; nonce: string } | { op: 'promote'; request: PromoteRequest; nonce: string }

const K = {
  job: (id: string) => `job:${id}`,
  active: (id: string) => `active:${id}`,
  promote: (id: string) => `promote:${id}`,
  /** The shared view: the next topic offset to apply. */
  offset: 'offset',
  /** The local store: `active:` was indexed. */
  indexed: 'indexed',
}
const isActive = (job: Job) => job.status === 'queued' || job.status === 'running'

/** An LMDB database of job records with the fold every store applies. */
/** The change an applied command made, for the store's listeners: none for a refused or repeated one. */
function changeOf(cmd: JobCommand, out: { created?: boolean; accepted?: boolean }): JobChange | undefined {
  if (cmd.op === 'promote') return out.accepted ? { kind: 'promote', request: cmd.request } : undefined
  return cmd.op === 'update' || out.created ? { kind: 'job', job: cmd.job } : undefined
}

function jobView(db: RootDatabase) {
  const get = (id: string) => db.get(K.job(id)) as Job | undefined
  function putJob(job: Job): void {
    db.put(K.job(job.id), job)
    if (isActive(job)) db.put(K.active(job.id), true)
    else db.remove(K.active(job.id))
    if (job.promotedVersions) db.remove(K.promote(job.id))
  }
  /** Applies one command (inside a write transaction); returns what its submitter learns. */
  function apply(cmd: JobCommand): { job?: Job; created?: boolean; accepted?: boolean } {
    if (cmd.op === 'submit') {
      const existing = get(cmd.job.id)
      if (existing) return { job: existing, created: false }
      putJob(cmd.job)
      return { job: cmd.job, created: true }
    }
    if (cmd.op === 'update') {
      putJob(cmd.job)
      return { job: cmd.job }
    }
    const job = get(cmd.request.jobId)
    if (db.get(K.promote(cmd.request.jobId)) !== undefined || job?.promotedVersions) return { accepted: false }
    db.put(K.promote(cmd.request.jobId), cmd.request)
    return { accepted: true }
  }
  return {
    get,
    apply,
    list(limit: number): Job[] {
      const out: Job[] = []
      for (const { value } of db.getRange({ start: 'job:\uffff', end: 'job:', reverse: true, limit })) out.push(value as Job)
      return out
    },
    active(): Job[] {
      const out: Job[] = []
      for (const { key } of db.getRange({ start: 'active:', end: 'active:\uffff' })) {
        const job = get(String(key).slice('active:'.length))
        if (job && isActive(job)) out.push(job)
      }
      return out
    },
    promoteRequests(): PromoteRequest[] {
      const out: PromoteRequest[] = []
      for (const { value } of db.getRange({ start: 'promote:', end: 'promote:\uffff' })) out.push(value as PromoteRequest)
      return out
    },
  }
}

/** Job records in one process's LMDB directory: no other process sees them. */
export function openLocalJobStore(dir: string): JobStore {
  const db: RootDatabase = open({ path: dir, compression: false })
  const view = jobView(db)
  const listeners: Array<(change: JobChange) => void> = []
  // Records from before `active:` was kept: index them once.
  if (db.get(K.indexed) === undefined) {
    db.transactionSync(() => {
      for (const { value } of db.getRange({ start: 'job:', end: 'job:\uffff' })) if (isActive(value as Job)) db.put(K.active((value as Job).id), true)
      db.put(K.indexed, true)
    })
  }
  async function run(cmd: JobCommand) {
    const out = await db.transaction(() => view.apply(cmd))
    const change = changeOf(cmd, out)
    if (change) for (const l of listeners) l(change)
    return out
  }
  return {
    get: view.get,
    list: view.list,
    active: view.active,
    promoteRequests: view.promoteRequests,
    submit: async (job) => {
      const out = await run({ op: 'submit', job, nonce: '' })
      return { job: out.job!, created: out.created! }
    },
    update: async (job) => void (await run({ op: 'update', job, nonce: '' })),
    requestPromote: async (request) => (await run({ op: 'promote', request, nonce: '' })).accepted!,
    onChange: (l) => void listeners.push(l),
    close: async () => db.close(),
  }
}

export interface SharedJobStoreOptions {
  /** Directory of this replica's LMDB view. */
  dir: string
  log: Log
  logger: Logger
  /** One partition (one order for every replica), compacted. @default BILLING_JOBS_TOPIC */
  topic?: string
  /** Longest a start waits to catch up with the topic, and a write to be applied. @default 30_000 */
  timeoutMs?: number
}

/** A job change that was appended but not applied in time (the replica's consumer is stuck). */
export class JobStoreUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'JobStoreUnavailableError'
  }
}

/**
 * The job store of a core replica among several: the job topic is the one source of truth, each
 * replica's LMDB directory a view of it, as the shared tenant store (tenants/shared-tenant-store.ts).
 *
 * - Every change is a record keyed by job id (promote requests by `promote:<job id>`) on the topic's
 *   single partition, carrying the job's whole state, so compaction keeps each job's latest state;
 *   a write resolves once this replica has read it back and applied it (read your own writes).
 * - Every replica folds every record in topic order with the same rules, so all views agree, and
 *   two replicas submitting one id get the same first-submitted job.
 * - On start the view catches up from the offset it last applied to the topic's end before the store
 *   is returned; a view ahead of the topic (a new log) is rebuilt from it. Job records an earlier
 *   version kept in this directory alone are appended once as submits (a known id is kept as it is).
 * - Each replica reads in its own throwaway group that never commits (its position is the view's).
 */
export async function openSharedJobStore(options: SharedJobStoreOptions): Promise<JobStore> {
  const { log, logger } = options
  const topic = options.topic ?? BILLING_JOBS_TOPIC
  const timeoutMs = options.timeoutMs ?? 30_000
  await log.ensureTopic(topic, 1, { compacted: true })
  const db: RootDatabase = open({ path: options.dir, compression: false })
  const view = jobView(db)
  const listeners: Array<(change: JobChange) => void> = []
  const waiters = new Map<string, { resolve(v: ReturnType<typeof view.apply>): void; reject(err: unknown): void }>()
  const offsetWaiters = new Set<{ offset: number; resolve(): void }>()
  let applied = (db.get(K.offset) as number | undefined) ?? 0
  let end = (await log.endOffsets(topic)).get(0) ?? 0

  if (db.get(K.offset) === undefined) {
    // Job records of this directory from before the shared topic: submitted to it once, then the view is rebuilt.
    const legacy: Job[] = []
    for (const { value } of db.getRange({ start: 'job:', end: 'job:\uffff' })) legacy.push(value as Job)
    if (legacy.length > 0) {
      const results = await log.append(topic, legacy.map((job) => ({ key: job.id, value: JSON.stringify({ op: 'submit', job, nonce: '' } satisfies JobCommand), partition: 0 })))
      end = Math.max(end, ...results.map((r) => r.offset + 1))
      logger.warn({ event: 'job_store_imported', jobs: legacy.length }, 'job records written before the shared job topic: submitted to it, view rebuilt from it')
    }
    db.clearSync()
    applied = 0
  } else if (applied > end) {
    logger.warn({ event: 'job_view_rebuilt', viewOffset: applied, topicEnd: end }, 'job view is ahead of the job topic (new log?): rebuilding it from the topic')
    db.clearSync()
    applied = 0
  }

  function apply(rec: LogRecord): void {
    if (rec.offset < applied) return
    let cmd: JobCommand | undefined
    try {
      cmd = JSON.parse(rec.value) as JobCommand
      if (!cmd || !['submit', 'update', 'promote'].includes(cmd.op)) throw new Error(`unknown op ${String(cmd?.op)}`)
    } catch (err) {
      cmd = undefined
      logger.error({ reason: 'bad_job_record' satisfies ReasonCode, offset: rec.offset, err }, 'job topic record is not a job command; skipped')
    }
    let out: ReturnType<typeof view.apply> = {}
    try {
      out = db.transactionSync(() => {
        const r = cmd ? view.apply(cmd) : {}
        db.put(K.offset, rec.offset + 1)
        return r
      })
    } catch (err) {
      logger.error({ reason: 'bad_job_record' satisfies ReasonCode, offset: rec.offset, err }, 'job command failed to apply; skipped on every replica')
      db.transactionSync(() => db.put(K.offset, rec.offset + 1))
      cmd = undefined
    }
    applied = rec.offset + 1
    if (cmd) {
      const w = waiters.get(cmd.nonce)
      if (w) {
        waiters.delete(cmd.nonce)
        w.resolve(out)
      }
      const change = changeOf(cmd, out)
      if (change) {
        for (const l of listeners) {
          try {
            l(change)
          } catch (err) {
            logger.error({ err }, 'job change listener failed')
          }
        }
      }
    }
    for (const o of offsetWaiters) {
      if (applied >= o.offset) {
        offsetWaiters.delete(o)
        o.resolve()
      }
    }
  }

  const consumer: Consumer = await log.consume({
    groupId: `adc-billing-jobs.${randomUUID()}`,
    topic,
    fromBeginning: true,
    onBatch: async (batch) => {
      for (const rec of batch.records) apply(rec)
    },
  })
  if (applied < end) {
    await new Promise<void>((resolve, reject) => {
      const o = { offset: end, resolve: () => (clearTimeout(timer), resolve()) }
      const timer = setTimeout(() => {
        offsetWaiters.delete(o)
        reject(new JobStoreUnavailableError(`start: the job view did not reach offset ${end} of ${topic} within ${timeoutMs} ms`))
      }, timeoutMs)
      offsetWaiters.add(o)
    }).catch(async (err) => {
      await consumer.stop()
      db.close()
      throw err
    })
  }
  logger.info({ topic, offset: applied }, 'job view caught up with the job topic')

  let closed = false
  async function run(key: string, cmd: JobCommand): Promise<ReturnType<typeof view.apply>> {
    if (closed) throw new JobStoreUnavailableError('the job store is closed')
    const outcome = new Promise<ReturnType<typeof view.apply>>((resolve, reject) => waiters.set(cmd.nonce, { resolve, reject }))
    let timer: NodeJS.Timeout | undefined
    try {
      await log.append(topic, [{ key, value: JSON.stringify(cmd), partition: 0 }])
      return await Promise.race([
        outcome,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new JobStoreUnavailableError(`job change ${cmd.op} appended but not applied within ${timeoutMs} ms`)), timeoutMs)
        }),
      ])
    } finally {
      clearTimeout(timer)
      waiters.delete(cmd.nonce)
    }
  }

  return {
    get: view.get,
    list: view.list,
    active: view.active,
    promoteRequests: view.promoteRequests,
    submit: async (job) => {
      // Known here already: nothing to append (a later submit of the id would only be ignored).
      const known = view.get(job.id)
      if (known) return { job: known, created: false }
      const out = await run(job.id, { op: 'submit', job, nonce: randomUUID() })
      return { job: out.job!, created: out.created! }
    },
    update: async (job) => void (await run(job.id, { op: 'update', job, nonce: randomUUID() })),
    requestPromote: async (request) => (await run(K.promote(request.jobId), { op: 'promote', request, nonce: randomUUID() })).accepted!,
    onChange: (l) => void listeners.push(l),
    close: async () => {
      if (closed) return
      closed = true
      await consumer.stop()
      for (const w of waiters.values()) w.reject(new JobStoreUnavailableError('the job store closed'))
      waiters.clear()
      await db.close()
    },
  }
}
