/**
 * The `Log` port: a partitioned, durable, ordered log with consumer groups, in our own words.
 * Adapters: `embedded-log.ts` (LMDB, one process) and `kafka-log.ts` (Apache Kafka via kafkajs).
 * Only `core/src/main.ts` chooses one; `core/src/testing/log.contract.ts` runs the same suite against each.
 *
 * Offsets are per partition, start at 0 and are dense in the embedded log (Kafka may leave gaps,
 * e.g. transaction markers), so callers must not assume `next = offset + 1` beyond "greater than".
 */
export interface ProducerRecord {
  /** Partition key; the partition is `partitionFor(key, n)` (Kafka's murmur2) unless `partition` is set. */
  key: string
  value: string
  partition?: number
}

export interface AppendResult {
  partition: number
  offset: number
}

export interface LogRecord {
  topic: string
  partition: number
  offset: number
  key: string
  value: string
  /** Append time, epoch ms. */
  timestamp: number
}

export interface Batch {
  topic: string
  partition: number
  records: LogRecord[]
  /** Offset of the next record to be appended to this partition when the batch was read. */
  highWatermark: number
}

export interface BatchContext {
  /** Marks records up to and including `offset` as processed; `commit()` then commits offset + 1. */
  resolveOffset(offset: number): void
  /** Commits the resolved position for this partition durably (to the group). */
  commit(): Promise<void>
  /** False once `stop()` was called: finish or abandon the batch without resolving. */
  isRunning(): boolean
  /** True once the partition was revoked from this consumer (rebalance): do not commit. */
  isStale(): boolean
}

export interface ConsumeOptions {
  groupId: string
  topic: string
  /**
   * Called with batches of one partition at a time, in offset order. If it throws, nothing past the
   * last committed offset is considered processed, and the batch is delivered again.
   */
  onBatch(batch: Batch, ctx: BatchContext): Promise<void>
  /** Called before batches of newly assigned partitions are delivered (e.g. to load their state). */
  onAssign?(partitions: number[]): Promise<void>
  /** Called after a partition is taken away, once its in-flight batch has finished. */
  onRevoke?(partitions: number[]): Promise<void>
  /** Upper bound on records per batch. @default 5000 */
  maxBatchRecords?: number
  /** Where a group without a committed offset starts. @default 'earliest' */
  fromBeginning?: boolean
}

export interface Consumer {
  /** Partitions currently assigned to this consumer. */
  assignment(): number[]
  /** Stops fetching, waits for the in-flight batch, leaves the group (partitions move to others). */
  stop(): Promise<void>
}

/** How a topic keeps its records. */
export interface TopicConfig {
  /**
   * Keep the latest record of every key, with no time or size limit (Kafka `cleanup.policy=compact`;
   * the embedded log's retention never deletes from it). For topics that are a source of truth.
   * @default false
   */
  compacted?: boolean
  /**
   * Keep every record until its owner deletes it (`Log.truncate`): no time or size retention (Kafka
   * `retention.ms=-1`, `retention.bytes=-1`; the embedded log's retention never deletes from it).
   * For topics whose reader needs every record since the last one it truncated to, whatever their
   * age: the state changelog, whose snapshot of an idle partition may be older than any retention.
   * @default false
   */
  retained?: boolean
}

export interface Log {
  /** Creates the topic if it does not exist (idempotent; an existing topic keeps its config). */
  ensureTopic(topic: string, partitions: number, config?: TopicConfig): Promise<void>
  partitionCount(topic: string): Promise<number>
  /** Appends durably (fsync / acks=all) before resolving; results are in input order. */
  append(topic: string, records: ProducerRecord[]): Promise<AppendResult[]>
  consume(options: ConsumeOptions): Promise<Consumer>
  /** Committed offsets (next offset to read) of a group, per partition; absent partitions never committed. */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, number>>
  /** Next offset to be written, per partition (for lag). */
  endOffsets(topic: string): Promise<Map<number, number>>
  /**
   * Reads one partition outside any group: every record with `offset >= from` up to the partition's
   * end at the time of the call, in offset order (from the partition's start if `from` was deleted).
   * Used to restore state from a changelog topic when a partition moves to another processor.
   */
  readRange(topic: string, partition: number, from: number): Promise<LogRecord[]>
  /**
   * Deletes the records of one partition below `before` (Kafka's DeleteRecords); later offsets are
   * unchanged. Used to bound a changelog once a snapshot made the older records unnecessary.
   */
  truncate(topic: string, partition: number, before: number): Promise<void>
  close(): Promise<void>
}

/** Why a log operation failed. `retriable` false means retrying the same call cannot succeed. */
export type LogErrorCode = 'unknown_topic' | 'invalid_partition' | 'stale_partition' | 'closed' | 'broker'

/**
 * A failed log operation. `stale_partition`: a commit for a partition this consumer no longer owns
 * (a rebalance moved it); the new owner re-reads from the last committed offset.
 */
export class LogError extends Error {
  readonly code: LogErrorCode
  readonly retriable: boolean
  constructor(code: LogErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'LogError'
    this.code = code
    this.retriable = options.retriable ?? false
  }
}
