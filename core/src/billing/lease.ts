import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { leaseTopic, ulidFromDigest } from '@adc/schemas'
import type { Consumer, Log } from '../log/log.js'
import { addDays, dayStart } from './days.js'

/**
 * A lease on the log: the member of a consumer group that owns the single partition of a lease
 * topic holds the lease. The log's group protocol (Kafka's group coordinator, or the embedded log's
 * in-process groups) gives that partition to exactly one live member, moves it when the member stops
 * or misses its session timeout, and needs no clock agreement between replicas.
 *
 * Used by billing so the T+1 scheduler and the job executor run on one core replica: every replica
 * calls `dailyTick`, only the holder submits, and only the holder runs jobs (jobs.ts). The holder
 * can lose the lease mid-job (session timeout under a long GC pause or a partition); it then writes
 * no further version or job state, the next holder resumes the job, and a job reuses the snapshot
 * versions its id already wrote (a scheduled close's id is deterministic, `scheduledJobId`).
 */
export interface Lease {
  /** Whether this replica holds the lease now. */
  held(): boolean
  /** Resolves once this replica holds the lease (tests, waiting for fail-over). */
  whenHeld(): Promise<void>
  /**
   * Claims `key` (e.g. `close:2026-10-01`) for this holder: true when the lease is held, this
   * holder has read the lease topic to its end, and no claim of `key` younger than `staleMs` is in
   * it (then the claim is appended first). A claim older than `staleMs` may be taken again: its
   * holder died before finishing, and the deterministic job id makes the retry reuse its version.
   * Claims live in the lease topic itself, so they survive the lease moving between replicas.
   */
  claim(key: string, now: number, staleMs?: number): Promise<boolean>
  /** Leaves the group: the lease moves to another member. */
  release(): Promise<void>
}

export const BILLING_LEASE = 'billing-scheduler'

export interface LogLeaseOptions {
  log: Log
  /** Lease name: topic `adc-lease.<name>`, group `adc-lease.<name>`. */
  name: string
  logger: Logger
}

/** Joins the lease group; resolves at once (holding or not). */
export async function acquireLogLease(options: LogLeaseOptions): Promise<Lease> {
  const { log, name, logger } = options
  const topic = leaseTopic(name)
  await log.ensureTopic(topic, 1, { compacted: true })
  let holding = false
  let waiters: Array<() => void> = []
  /** Claims read from the lease topic (key → claim time), and the next offset to read. */
  const claims = new Map<string, number>()
  let readTo = 0
  const consumer: Consumer = await log.consume({
    groupId: topic,
    topic,
    onAssign: async (partitions) => {
      if (!partitions.includes(0)) return
      holding = true
      logger.info({ lease: name }, 'lease acquired')
      for (const w of waiters.splice(0)) w()
    },
    onRevoke: async (partitions) => {
      if (!partitions.includes(0)) return
      holding = false
      logger.info({ lease: name }, 'lease lost')
    },
    // The holder reads every claim (the group never commits: each new holder reads from the start).
    onBatch: async (batch) => {
      for (const r of batch.records) {
        const at = Number(JSON.parse(r.value).at)
        claims.set(r.key, Math.max(claims.get(r.key) ?? 0, Number.isFinite(at) ? at : 0))
        readTo = Math.max(readTo, r.offset + 1)
      }
    },
  })
  async function caughtUp(timeoutMs: number): Promise<boolean> {
    const end = (await log.endOffsets(topic)).get(0) ?? 0
    const deadline = Date.now() + timeoutMs
    while (readTo < end) {
      if (Date.now() > deadline || !holding) return false
      await new Promise((r) => setTimeout(r, 50))
    }
    return true
  }
  let released = false
  return {
    held: () => holding && !released,
    whenHeld: () => (holding && !released ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    claim: async (key, now, staleMs = 6 * 3600_000) => {
      if (!holding || released || !(await caughtUp(10_000))) return false
      const at = claims.get(key)
      if (at !== undefined && now - at < staleMs) return false
      await log.append(topic, [{ key, value: JSON.stringify({ at: now }), partition: 0 }])
      claims.set(key, now)
      logger.info({ lease: name, key }, 'lease claim recorded')
      return holding
    },
    release: async () => {
      if (released) return
      released = true
      holding = false
      waiters = []
      await consumer.stop()
    },
  }
}

/** A lease that is always held: one core process, or tests. */
export const SOLE_LEASE: Lease = { held: () => true, whenHeld: () => Promise.resolve(), claim: async () => true, release: async () => undefined }

/**
 * A lease never held: a replica outside the home region (docs/regions.md), which runs no
 * single-writer job (T+1 scheduler, billing jobs, close reports) and never joins the lease group.
 */
export const NEVER_HELD_LEASE: Lease = {
  held: () => false,
  whenHeld: () => new Promise<void>(() => undefined),
  claim: async () => false,
  release: async () => undefined,
}

/**
 * The id of the scheduler's billing job for `day` (and for a re-close, the version it supersedes): a ULID whose time is the end of the day and whose
 * random part is a hash of the day, so every replica, and every retry, names the same job and the
 * job resumes the snapshot version it already wrote instead of writing a second one. It sorts with
 * the other job ids by when the day closed.
 */
export function scheduledJobId(day: string, close = ''): string {
  // `close` names a later close of the same day (the version it supersedes); the first keeps the day alone.
  const digest = createHash('sha256').update(close ? `scheduled-billing:${day}:${close}` : `scheduled-billing:${day}`).digest()
  return ulidFromDigest(dayStart(addDays(day, 1)), digest)
}
