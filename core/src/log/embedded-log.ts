import { mkdirSync } from 'node:fs'
import { open, type Database, type RootDatabase } from 'lmdb'
import { pino, type Logger } from 'pino'
import { partitionFor } from '@adc/schemas'
import {
  LogError,
  type AppendResult,
  type Batch,
  type BatchContext,
  type ConsumeOptions,
  type Consumer,
  type Log,
  type LogRecord,
  type ProducerRecord,
  type TopicConfig,
} from './log.js'

export interface EmbeddedLogOptions {
  /** Directory of the LMDB environment; created if missing. One process at a time. */
  dir: string
  logger?: Logger
  /** Longest a consumer sleeps without a wake-up before looking again (a safety net, not polling). @default 5000 */
  idleWaitMs?: number
  /** First delay before a partition whose batch threw is delivered again; doubles up to 5 s. @default 200 */
  retryBackoffMs?: number
  /**
   * Deletes records older than `maxAgeMs` that every group which committed on the partition has
   * committed past (unlike Kafka's time-only retention, nothing unprocessed is deleted), keeping the
   * last record of each partition so offsets continue after a restart. `false` keeps everything.
   * @default { maxAgeMs: 7 days (Kafka's retention.ms default), intervalMs: 60_000 }
   */
  retention?: {
    maxAgeMs?: number
    intervalMs?: number
    /**
     * Past this many bytes of records (LMDB pages in use), the oldest processed records are deleted
     * whatever their age, in proportion per partition, until the log fits; unprocessed records and
     * compacted topics are never deleted. @default unbounded
     */
    maxBytes?: number
  } | false
}

/** Stored record value: [key, value, append time ms]. Arrays keep msgpack small. */
type StoredRecord = [string, string, number]
type RecordKey = [string, number, number]
type CommitKey = [string, string, number]

const MAX_OFFSET = Number.MAX_SAFE_INTEGER

/**
 * A version counter consumers wait on: `wait(seen)` returns at once if anything was notified since
 * `seen` was read, so a notify between "look for data" and "go to sleep" is never missed.
 */
class Signal {
  version = 0
  private waiters = new Set<() => void>()

  notify(): void {
    this.version++
    const waiters = [...this.waiters]
    this.waiters.clear()
    for (const w of waiters) w()
  }

  wait(seen: number, ms: number): Promise<void> {
    if (this.version !== seen) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(0, ms))
      this.waiters.add(done)
    })
  }
}

interface TopicState {
  partitions: number
  /** A source-of-truth topic: retention never deletes from it. */
  compacted: boolean
  /** Next offset to assign, per partition (includes appends not yet durable). */
  next: number[]
  /** End of the durable, readable records, per partition. */
  visible: number[]
  /** Wakes every consumer of this topic. */
  subscribers: Set<Signal>
}

interface GroupState {
  groupId: string
  topic: string
  members: EmbeddedConsumer[]
  generation: number
  /** Which member holds each partition; a partition moves only once its holder released it. */
  owners: Map<number, EmbeddedConsumer>
}

/** The embedded log: the `Log` port plus its retention pass (run on a timer; callable for tests). */
export interface EmbeddedLogHandle extends Log {
  /** Runs one retention pass now; resolves to the number of records deleted. */
  compact(): Promise<number>
}

/**
 * Kafka's RangeAssignor for one topic: members sorted by id, each gets a contiguous range, the first
 * `n % m` members one partition more.
 */
export function rangeAssign(partitions: number, memberCount: number): number[][] {
  const out: number[][] = []
  const per = Math.floor(partitions / memberCount)
  const extra = partitions % memberCount
  let start = 0
  for (let i = 0; i < memberCount; i++) {
    const len = per + (i < extra ? 1 : 0)
    out.push(Array.from({ length: len }, (_, j) => start + j))
    start += len
  }
  return out
}

/**
 * The `Log` port on LMDB, for one process: topics with N partitions, dense offsets per partition,
 * appends that resolve only once flushed to disk, consumer groups with durably committed offsets and
 * in-process membership (range assignment, rebalance on join and stop).
 *
 * @example
 * const log = await createEmbeddedLog({ dir: '.data/log' })
 * await log.ensureTopic('ad-events', 4)
 * await log.append('ad-events', [{ key: impressionId, value: JSON.stringify(envelope) }])
 */
export async function createEmbeddedLog(options: EmbeddedLogOptions): Promise<EmbeddedLogHandle> {
  const log = new EmbeddedLog(options)
  await log.load()
  return log
}

class EmbeddedLog implements EmbeddedLogHandle {
  readonly logger: Logger
  readonly idleWaitMs: number
  readonly retryBackoffMs: number
  private readonly root: RootDatabase
  private readonly meta: Database<{ partitions: number; compacted?: boolean }, string>
  private readonly records: Database<StoredRecord, RecordKey>
  private readonly commits: Database<number, CommitKey>
  private readonly topics = new Map<string, TopicState>()
  private readonly groups = new Map<string, GroupState>()
  private readonly consumers = new Set<EmbeddedConsumer>()
  private memberSeq = 0
  private closed = false
  private readonly retentionMs: number | undefined
  private readonly retentionBytes: number | undefined
  private retentionTimer: NodeJS.Timeout | undefined
  private compacting: Promise<number> | undefined
  /** A failed write leaves a gap in offsets; the log refuses further appends rather than hide it. */
  private writeFailure: unknown = undefined

  constructor(options: EmbeddedLogOptions) {
    this.logger = options.logger ?? pino({ name: 'embedded-log' })
    this.idleWaitMs = options.idleWaitMs ?? 5000
    this.retryBackoffMs = options.retryBackoffMs ?? 200
    mkdirSync(options.dir, { recursive: true })
    // separateFlushed: a write's promise resolves on commit and carries `.flushed` for the fsync;
    // append and commit wait for the latter (overlappingSync is on by default outside Windows).
    this.root = open({ path: options.dir, maxDbs: 8, separateFlushed: true, compression: false })
    this.meta = this.root.openDB({ name: 'topics' })
    this.records = this.root.openDB({ name: 'records' })
    this.commits = this.root.openDB({ name: 'commits' })
    if (options.retention !== false) {
      this.retentionMs = options.retention?.maxAgeMs ?? 7 * 24 * 3600_000
      this.retentionBytes = options.retention?.maxBytes
      this.retentionTimer = setInterval(() => void this.compact(), options.retention?.intervalMs ?? 60_000)
      this.retentionTimer.unref()
    }
  }

  /** One retention pass; returns how many records it deleted. */
  compact(): Promise<number> {
    if (this.closed || this.retentionMs === undefined) return Promise.resolve(0)
    this.compacting ??= this.compactOnce(this.retentionMs)
      .catch((err: unknown) => {
        this.logger.error({ err }, 'log retention pass failed')
        return 0
      })
      .finally(() => (this.compacting = undefined))
    return this.compacting
  }

  private async compactOnce(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs
    const minCommitted = new Map<string, number>()
    for (const { key, value } of this.commits.getRange({})) {
      const k = `${key[1]}\u0000${key[2]}`
      minCommitted.set(k, Math.min(minCommitted.get(k) ?? Number.POSITIVE_INFINITY, value))
    }
    let deleted = 0
    for (const [topic, state] of this.topics) {
      if (state.compacted) continue
      for (let p = 0; p < state.partitions; p++) {
        if (this.closed) return deleted
        const limit = Math.min(minCommitted.get(`${topic}\u0000${p}`) ?? 0, state.visible[p]! - 1)
        if (limit <= 0) continue
        let last: Promise<boolean> | undefined
        for (const { key, value } of this.records.getRange({ start: [topic, p, 0], end: [topic, p, limit], limit: 10_000 })) {
          if (value[2] >= cutoff) break
          last = this.records.remove(key)
          deleted++
        }
        if (last) await durable(last)
      }
    }
    deleted += await this.boundSize(minCommitted)
    if (deleted > 0) this.logger.info({ deleted, maxAgeMs, maxBytes: this.retentionBytes }, 'log retention deleted processed records')
    return deleted
  }

  /** Bytes the records database occupies (pages in use). */
  private recordBytes(): number {
    const s = this.records.getStats() as { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }
    return s.pageSize * (s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages)
  }

  /** Size bound: deletes the oldest processed records, the same share of each partition's, until under maxBytes. */
  private async boundSize(minCommitted: Map<string, number>): Promise<number> {
    const max = this.retentionBytes
    if (max === undefined) return 0
    let deleted = 0
    for (let round = 0; round < 8; round++) {
      const bytes = this.recordBytes()
      if (bytes <= max || this.closed) return deleted
      const share = Math.min(1, (bytes - max) / bytes + 0.05)
      let progress = 0
      for (const [topic, state] of this.topics) {
        if (state.compacted) continue
        for (let p = 0; p < state.partitions; p++) {
          const limit = Math.min(minCommitted.get(`${topic}\u0000${p}`) ?? 0, state.visible[p]! - 1)
          if (limit <= 0) continue
          const keys = [...this.records.getKeys({ start: [topic, p, 0], end: [topic, p, limit] })]
          const n = Math.min(keys.length, Math.ceil(keys.length * share))
          let last: Promise<boolean> | undefined
          for (const key of keys.slice(0, n)) last = this.records.remove(key)
          if (last) await durable(last)
          progress += n
        }
      }
      deleted += progress
      if (progress === 0) return deleted
    }
    return deleted
  }

  async load(): Promise<void> {
    for (const { key, value } of this.meta.getRange({})) {
      const next: number[] = []
      for (let p = 0; p < value.partitions; p++) next.push(this.lastOffset(key, p) + 1)
      this.topics.set(key, { partitions: value.partitions, compacted: value.compacted === true, next, visible: [...next], subscribers: new Set() })
    }
  }

  private lastOffset(topic: string, partition: number): number {
    for (const key of this.records.getKeys({ start: [topic, partition, MAX_OFFSET], end: [topic, partition, -1], reverse: true, limit: 1 })) {
      return key[2]
    }
    return -1
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('closed', 'the log is closed')
  }

  topicState(topic: string): TopicState {
    const state = this.topics.get(topic)
    if (!state) throw new LogError('unknown_topic', `unknown topic ${JSON.stringify(topic)}`)
    return state
  }

  async ensureTopic(topic: string, partitions: number, config: TopicConfig = {}): Promise<void> {
    this.checkOpen()
    if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${partitions}`)
    if (this.topics.has(topic)) return
    // Either way the embedded retention never deletes from the topic (it compacts nothing by key).
    const compacted = config.compacted === true || config.retained === true
    this.topics.set(topic, { partitions, compacted, next: Array(partitions).fill(0), visible: Array(partitions).fill(0), subscribers: new Set() })
    await durable(this.meta.put(topic, { partitions, ...(compacted ? { compacted } : {}) }))
  }

  async partitionCount(topic: string): Promise<number> {
    this.checkOpen()
    return this.topicState(topic).partitions
  }

  async append(topic: string, records: ProducerRecord[]): Promise<AppendResult[]> {
    this.checkOpen()
    if (this.writeFailure !== undefined) throw new LogError('closed', 'an earlier write failed; reopen the log', { cause: this.writeFailure })
    const state = this.topicState(topic)
    const results: AppendResult[] = []
    for (const r of records) {
      const partition = r.partition ?? partitionFor(r.key, state.partitions)
      if (!Number.isInteger(partition) || partition < 0 || partition >= state.partitions) {
        throw new LogError('invalid_partition', `partition ${partition} is outside 0..${state.partitions - 1} of ${topic}`)
      }
      results.push({ partition, offset: -1 })
    }
    if (records.length === 0) return results
    const now = Date.now()
    // Offsets are assigned synchronously and every put is queued in this event turn, so LMDB commits
    // them in one transaction, in the same order as concurrent appends were called.
    let last: Promise<boolean> | undefined
    for (let i = 0; i < records.length; i++) {
      const res = results[i]!
      const rec = records[i]!
      res.offset = state.next[res.partition]!++
      last = this.records.put([topic, res.partition, res.offset], [rec.key, rec.value, now])
    }
    try {
      await durable(last!)
    } catch (err) {
      this.writeFailure = err
      throw new LogError('broker', 'append failed to commit', { retriable: false, cause: err })
    }
    // Commits resolve in order, so every offset below these is durable too.
    for (const res of results) {
      if (state.visible[res.partition]! <= res.offset) state.visible[res.partition] = res.offset + 1
    }
    for (const s of state.subscribers) s.notify()
    return results
  }

  readBatch(topic: string, partition: number, from: number, end: number, limit: number): LogRecord[] {
    const out: LogRecord[] = []
    for (const { key, value } of this.records.getRange({ start: [topic, partition, from], end: [topic, partition, end], limit })) {
      out.push({ topic, partition, offset: key[2], key: value[0], value: value[1], timestamp: value[2] })
    }
    return out
  }

  async readRange(topic: string, partition: number, from: number): Promise<LogRecord[]> {
    this.checkOpen()
    const state = this.topicState(topic)
    if (!Number.isInteger(partition) || partition < 0 || partition >= state.partitions) {
      throw new LogError('invalid_partition', `partition ${partition} is outside 0..${state.partitions - 1} of ${topic}`)
    }
    return this.readBatch(topic, partition, Math.max(0, from), state.visible[partition]!, Number.MAX_SAFE_INTEGER)
  }

  async truncate(topic: string, partition: number, before: number): Promise<void> {
    this.checkOpen()
    const state = this.topicState(topic)
    if (!Number.isInteger(partition) || partition < 0 || partition >= state.partitions) {
      throw new LogError('invalid_partition', `partition ${partition} is outside 0..${state.partitions - 1} of ${topic}`)
    }
    // The last record stays, as in retention: offsets continue from it after a restart.
    const end = Math.min(before, state.visible[partition]! - 1)
    let last: Promise<boolean> | undefined
    for (const key of this.records.getKeys({ start: [topic, partition, 0], end: [topic, partition, Math.max(0, end)] })) last = this.records.remove(key)
    if (last) await durable(last)
  }

  committedOffset(groupId: string, topic: string, partition: number): number | undefined {
    return this.commits.get([groupId, topic, partition])
  }

  async commitOffset(groupId: string, topic: string, partition: number, offset: number): Promise<void> {
    this.checkOpen()
    await durable(this.commits.put([groupId, topic, partition], offset))
  }

  async consume(options: ConsumeOptions): Promise<Consumer> {
    this.checkOpen()
    const state = this.topicState(options.topic)
    const groupKey = `${options.groupId}\u0000${options.topic}`
    let group = this.groups.get(groupKey)
    if (!group) {
      group = { groupId: options.groupId, topic: options.topic, members: [], generation: 0, owners: new Map() }
      this.groups.set(groupKey, group)
    }
    const consumer = new EmbeddedConsumer(this, group, state, options, ++this.memberSeq)
    this.consumers.add(consumer)
    group.members.push(consumer)
    this.rebalance(group)
    consumer.start()
    return consumer
  }

  /** Assigns ranges to members in join order; members pick up the change at their next loop turn. */
  rebalance(group: GroupState): void {
    group.generation++
    const state = this.topicState(group.topic)
    const ranges = rangeAssign(state.partitions, Math.max(1, group.members.length))
    group.members.forEach((m, i) => m.setTarget(ranges[i] ?? [], group.generation))
    this.logger.debug({ groupId: group.groupId, topic: group.topic, generation: group.generation, members: group.members.length }, 'group rebalanced')
  }

  leave(consumer: EmbeddedConsumer, group: GroupState): void {
    this.consumers.delete(consumer)
    group.members = group.members.filter((m) => m !== consumer)
    if (group.members.length === 0) this.groups.delete(`${group.groupId}\u0000${group.topic}`)
    else this.rebalance(group)
  }

  async committedOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
    this.checkOpen()
    const out = new Map<number, number>()
    for (const { key, value } of this.commits.getRange({ start: [groupId, topic, -1], end: [groupId, topic, MAX_OFFSET] })) {
      out.set(key[2], value)
    }
    return out
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    this.checkOpen()
    const state = this.topicState(topic)
    return new Map(state.visible.map((o, p) => [p, o]))
  }

  async close(): Promise<void> {
    if (this.closed) return
    await Promise.all([...this.consumers].map((c) => c.stop()))
    clearInterval(this.retentionTimer)
    await this.compacting
    this.closed = true
    await this.root.close()
  }
}

/** Waits until an LMDB write is committed and flushed to disk. */
async function durable(write: Promise<boolean>): Promise<void> {
  await write
  const flushed = (write as Promise<boolean> & { flushed?: PromiseLike<unknown> }).flushed
  if (flushed) await flushed
}

/**
 * One group member. A single loop does everything in turn (release revoked partitions, take newly
 * assigned ones once their previous holder released them, deliver one batch), so a partition is
 * never in two members' hands and `onRevoke` always follows the in-flight batch.
 */
class EmbeddedConsumer implements Consumer {
  private running = true
  private loopDone: Promise<void> = Promise.resolve()
  private readonly signal = new Signal()
  /** Latest assignment from the group, and the generation each target partition was given in. */
  private target = new Map<number, number>()
  /** Partitions this member holds and delivers, with their generation. */
  private readonly active = new Map<number, number>()
  private readonly positions = new Map<number, number>()
  private readonly pausedUntil = new Map<number, number>()
  private readonly failures = new Map<number, number>()
  /** Taken partitions whose onAssign has not succeeded yet: not delivered, retried with backoff. */
  private readonly unready = new Set<number>()
  private assignRetryAt = 0
  private assignFailures = 0
  private cursor = 0
  private readonly maxBatch: number

  constructor(
    private readonly log: EmbeddedLog,
    private readonly group: GroupState,
    private readonly topic: TopicState,
    private readonly options: ConsumeOptions,
    readonly memberSeq: number,
  ) {
    this.maxBatch = options.maxBatchRecords ?? 5000
    topic.subscribers.add(this.signal)
  }

  setTarget(partitions: number[], generation: number): void {
    const next = new Map<number, number>()
    for (const p of partitions) next.set(p, this.target.get(p) ?? generation)
    this.target = next
    this.signal.notify()
  }

  /** Called by the group when a partition was released, so waiting members look again. */
  wake(): void {
    this.signal.notify()
  }

  assignment(): number[] {
    return [...this.active.keys()].sort((a, b) => a - b)
  }

  start(): void {
    this.loopDone = this.loop().catch((err: unknown) => {
      this.log.logger.error({ err, groupId: this.group.groupId, topic: this.group.topic }, 'consumer loop failed')
    })
  }

  async stop(): Promise<void> {
    if (!this.running) return this.loopDone
    this.running = false
    this.signal.notify()
    await this.loopDone
  }

  private async loop(): Promise<void> {
    try {
      while (this.running) {
        const seen = this.signal.version
        await this.syncAssignment()
        if (!this.running) break
        const delivered = await this.deliverOne()
        if (!delivered && this.running) await this.signal.wait(seen, this.nextWakeMs())
      }
    } finally {
      await this.release([...this.active.keys()])
      this.topic.subscribers.delete(this.signal)
      this.log.leave(this, this.group)
    }
  }

  private nextWakeMs(): number {
    let ms = this.log.idleWaitMs
    const now = Date.now()
    for (const until of this.pausedUntil.values()) ms = Math.min(ms, until - now)
    if (this.unready.size > 0) ms = Math.min(ms, this.assignRetryAt - now)
    return Math.max(1, ms)
  }

  private async release(partitions: number[]): Promise<void> {
    if (partitions.length === 0) return
    // onRevoke only for partitions whose onAssign went through.
    const assigned = partitions.filter((p) => !this.unready.has(p))
    for (const p of partitions) {
      this.active.delete(p)
      this.positions.delete(p)
      this.pausedUntil.delete(p)
      this.failures.delete(p)
      this.unready.delete(p)
    }
    try {
      if (assigned.length > 0) await this.options.onRevoke?.(assigned)
    } catch (err) {
      this.log.logger.error({ err, groupId: this.group.groupId, topic: this.group.topic, partitions: assigned }, 'onRevoke failed')
    }
    for (const p of partitions) {
      if (this.group.owners.get(p) === this) this.group.owners.delete(p)
    }
    for (const m of this.group.members) if (m !== this) m.wake()
  }

  private async syncAssignment(): Promise<void> {
    const revoked = [...this.active.keys()].filter((p) => this.target.get(p) !== this.active.get(p))
    await this.release(revoked)
    const taken: number[] = []
    for (const [p, generation] of this.target) {
      if (this.active.has(p)) continue
      const holder = this.group.owners.get(p)
      if (holder && holder !== this) continue // taken once the holder releases it (it wakes us)
      this.group.owners.set(p, this)
      this.active.set(p, generation)
      taken.push(p)
    }
    for (const p of taken) {
      const committed = this.log.committedOffset(this.group.groupId, this.group.topic, p)
      const start = committed ?? (this.options.fromBeginning === false ? this.topic.visible[p]! : 0)
      this.positions.set(p, start)
      this.unready.add(p)
    }
    if (this.unready.size === 0 || Date.now() < this.assignRetryAt) return
    const pending = [...this.unready].sort((a, b) => a - b)
    try {
      await this.options.onAssign?.(pending)
      for (const p of pending) this.unready.delete(p)
      this.assignFailures = 0
    } catch (err) {
      // No batch of these partitions is delivered until onAssign succeeds (e.g. their state loaded).
      this.assignFailures++
      const backoff = Math.min(5000, this.log.retryBackoffMs * 2 ** (this.assignFailures - 1))
      this.assignRetryAt = Date.now() + backoff
      this.log.logger.error({ err, groupId: this.group.groupId, topic: this.group.topic, partitions: pending, backoffMs: backoff }, 'onAssign failed; retrying before delivering these partitions')
    }
  }

  private pickPartition(): number | undefined {
    const parts = this.assignment()
    if (parts.length === 0) return undefined
    const now = Date.now()
    for (let i = 0; i < parts.length; i++) {
      const p = parts[(this.cursor + i) % parts.length]!
      if (this.unready.has(p) || (this.pausedUntil.get(p) ?? 0) > now) continue
      if (this.positions.get(p)! < this.topic.visible[p]!) {
        this.cursor = (this.cursor + i + 1) % parts.length
        return p
      }
    }
    return undefined
  }

  private async deliverOne(): Promise<boolean> {
    const p = this.pickPartition()
    if (p === undefined) return false
    const generation = this.active.get(p)!
    const from = this.positions.get(p)!
    const highWatermark = this.topic.visible[p]!
    const records = this.log.readBatch(this.group.topic, p, from, highWatermark, this.maxBatch)
    if (records.length === 0) {
      // Offsets are dense, so this only happens past a gap left by a failed write.
      this.positions.set(p, highWatermark)
      return true
    }
    let resolved = from
    const isStale = (): boolean => this.target.get(p) !== generation
    const ctx: BatchContext = {
      resolveOffset: (offset: number) => {
        if (offset + 1 > resolved) resolved = offset + 1
      },
      commit: async () => {
        if (this.target.get(p) !== generation) {
          throw new LogError('stale_partition', `partition ${p} of ${this.group.topic} was reassigned; not committing`)
        }
        const committed = this.log.committedOffset(this.group.groupId, this.group.topic, p)
        if (committed === undefined || resolved > committed) await this.log.commitOffset(this.group.groupId, this.group.topic, p, resolved)
      },
      isRunning: () => this.running,
      isStale,
    }
    const batch: Batch = { topic: this.group.topic, partition: p, records, highWatermark }
    try {
      await this.options.onBatch(batch, ctx)
    } catch (err) {
      const failures = (this.failures.get(p) ?? 0) + 1
      this.failures.set(p, failures)
      const backoff = Math.min(5000, this.log.retryBackoffMs * 2 ** (failures - 1))
      this.log.logger.error({ err, groupId: this.group.groupId, topic: this.group.topic, partition: p, offset: from, failures, backoffMs: backoff }, 'onBatch failed; delivering again from the committed offset')
      const committed = this.log.committedOffset(this.group.groupId, this.group.topic, p)
      this.positions.set(p, committed ?? from)
      this.pausedUntil.set(p, Date.now() + backoff)
      return true
    }
    this.failures.delete(p)
    if (resolved > from) {
      this.positions.set(p, resolved)
      this.pausedUntil.delete(p)
    } else {
      // Nothing resolved: like kafkajs with auto-resolve off, the same records come again; a short
      // pause keeps a handler that keeps declining them from spinning.
      this.pausedUntil.set(p, Date.now() + this.log.retryBackoffMs)
    }
    return true
  }
}
