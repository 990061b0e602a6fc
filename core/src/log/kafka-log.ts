import {
  Kafka,
  Partitioners,
  logLevel as KafkaLogLevel,
  type Admin,
  type Consumer as KafkaConsumer,
  type EachBatchPayload,
  type LogEntry,
  type Producer,
  type RetryOptions,
} from 'kafkajs'
import { randomUUID } from 'node:crypto'
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

export interface KafkaLogOptions {
  brokers: string[]
  /** @default 'adc-core' */
  clientId?: string
  logger?: Logger
  /** kafkajs client retry (connections, metadata, produce). @default kafkajs defaults */
  retry?: RetryOptions
  /** Replication factor of topics `ensureTopic` creates; -1 is the broker's default. @default -1 */
  replicationFactor?: number
  consumer?: {
    /** @default 30_000 */
    sessionTimeout?: number
    /** @default 3_000 */
    heartbeatInterval?: number
    /** Long-poll: how long the broker holds a fetch open without new data. @default 1_000 */
    maxWaitTimeInMs?: number
    /** First delay before a partition whose batch threw is delivered again; doubles up to 5 s. @default 200 */
    retryBackoffMs?: number
    /**
     * Bytes one fetch returns per partition (kafkajs `maxBytesPerPartition`, default there 1 MiB,
     * about 1500 events): a batch handed to onBatch is at most this, whatever maxBatchRecords says,
     * and every batch pays a fixed ClickHouse cost per table. 16 MiB lets the processor's 20000-record
     * batches through: bench/scale-bench.ts, one processor, 13.6k → 23k events per CPU-second.
     * @default 16 MiB
     */
    maxBytesPerPartition?: number
    /** Bytes one fetch returns over all partitions (kafkajs `maxBytes`; the broker's fetch.max.bytes caps it too). @default 48 MiB */
    maxBytes?: number
  }
}

/** kafkajs error types that mean "this member no longer owns the partition in this generation". */
const REBALANCE_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID'])

function errorType(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'type' in err ? String((err as { type: unknown }).type) : undefined
}

function toPinoLevel(level: KafkaLogLevel): 'error' | 'warn' | 'info' | 'debug' {
  if (level === KafkaLogLevel.ERROR || level === KafkaLogLevel.NOTHING) return 'error'
  if (level === KafkaLogLevel.WARN) return 'warn'
  if (level === KafkaLogLevel.INFO) return 'info'
  return 'debug'
}

/**
 * The `Log` port on Apache Kafka through kafkajs 2.2.4. Produces with acks=-1 through an idempotent
 * producer, consumes with a consumer group per `consume()` call (autoCommit off, eachBatch with
 * auto-resolve off, commits only through `ctx.commit()`).
 *
 * Only kafkajs-shaped calls are used (producer.sendBatch, consumer.run/eachBatch/seek, admin), so
 * `@confluentinc/kafka-javascript`'s KafkaJS-compatible API could replace the client.
 *
 * @example
 * const log = await createKafkaLog({ brokers: ['127.0.0.1:19092'] })
 */
export async function createKafkaLog(options: KafkaLogOptions): Promise<Log> {
  const log = new KafkaLog(options)
  await log.connect()
  return log
}

interface PendingAppend {
  topic: string
  records: ProducerRecord[]
  partitions: number[]
  resolve(results: AppendResult[]): void
  reject(err: unknown): void
}

class KafkaLog implements Log {
  readonly kafka: Kafka
  readonly logger: Logger
  readonly options: KafkaLogOptions
  private readonly producer: Producer
  private readonly admin: Admin
  private readonly partitionCounts = new Map<string, number>()
  private readonly consumers = new Set<KafkaLogConsumer>()
  private pending: PendingAppend[] = []
  private flushing: Promise<void> | undefined
  private closed = false

  constructor(options: KafkaLogOptions) {
    this.options = options
    this.logger = options.logger ?? pino({ name: 'kafka-log' })
    const base = this.logger
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'adc-core',
      brokers: options.brokers,
      retry: options.retry,
      logLevel: KafkaLogLevel.WARN,
      logCreator:
        () =>
        ({ namespace, level, log }: LogEntry) => {
          const { message, ...extra } = log
          // kafkajs logs every error response of a request at ERROR (e.g. "coordinator is loading"
          // while __consumer_offsets is created) and then retries; failures that matter reach the
          // caller as thrown errors, so per-request ones are warnings here.
          const lvl = namespace === 'Connection' && level === KafkaLogLevel.ERROR ? 'warn' : toPinoLevel(level)
          base[lvl]({ namespace, ...extra }, message)
        },
    })
    // Idempotent: a retried produce request is de-duplicated by the broker (sequence numbers), so a
    // network blip cannot write a record twice. It implies acks=-1.
    this.producer = this.kafka.producer({
      idempotent: true,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    })
    this.admin = this.kafka.admin()
  }

  async connect(): Promise<void> {
    await Promise.all([this.producer.connect(), this.admin.connect()])
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('closed', 'the log is closed')
  }

  async ensureTopic(topic: string, partitions: number, config: TopicConfig = {}): Promise<void> {
    this.checkOpen()
    if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${partitions}`)
    // Look first: creating an existing topic is an error response kafkajs would log at every start.
    if ((await this.admin.listTopics()).includes(topic)) return
    try {
      await this.admin.createTopics({
        waitForLeaders: true,
        topics: [{
          topic, numPartitions: partitions, replicationFactor: this.options.replicationFactor ?? -1,
          configEntries: [
            // A record's time is when the broker appended it, whatever time its producer wrote: the
            // processor trusts it as "the log received it" (a receivedAt more than an hour past it is
            // a bad row), so a producer's clock, or a forged timestamp, must not set it.
            { name: 'message.timestamp.type', value: 'LogAppendTime' },
            ...(config.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : []),
            ...(config.retained ? [{ name: 'retention.ms', value: '-1' }, { name: 'retention.bytes', value: '-1' }] : []),
          ],
        }],
      })
    } catch (err) {
      if (errorType(err) !== 'TOPIC_ALREADY_EXISTS') throw err
    }
  }

  async partitionCount(topic: string): Promise<number> {
    this.checkOpen()
    const cached = this.partitionCounts.get(topic)
    if (cached !== undefined) return cached
    try {
      const meta = await this.admin.fetchTopicMetadata({ topics: [topic] })
      const n = meta.topics[0]?.partitions.length ?? 0
      if (n === 0) throw new LogError('unknown_topic', `unknown topic ${JSON.stringify(topic)}`)
      this.partitionCounts.set(topic, n)
      return n
    } catch (err) {
      if (err instanceof LogError) throw err
      if (errorType(err) === 'UNKNOWN_TOPIC_OR_PARTITION') throw new LogError('unknown_topic', `unknown topic ${JSON.stringify(topic)}`, { cause: err })
      throw err
    }
  }

  async append(topic: string, records: ProducerRecord[]): Promise<AppendResult[]> {
    this.checkOpen()
    const n = await this.partitionCount(topic)
    const partitions = records.map((r) => {
      const p = r.partition ?? partitionFor(r.key, n)
      if (!Number.isInteger(p) || p < 0 || p >= n) throw new LogError('invalid_partition', `partition ${p} is outside 0..${n - 1} of ${topic}`)
      return p
    })
    if (records.length === 0) return []
    return new Promise<AppendResult[]>((resolve, reject) => {
      this.pending.push({ topic, records, partitions, resolve, reject })
      this.flushing ??= this.flush()
    })
  }

  /**
   * One produce request in flight at a time: appends that arrive meanwhile go out together in the
   * next request. kafkajs's idempotent producer tracks sequence numbers per partition and is only
   * safe without concurrent sends to the same partition; batching keeps throughput anyway.
   */
  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const group = this.pending
      this.pending = []
      const byTopic = new Map<string, { key: string; value: string; partition: number }[]>()
      for (const a of group) {
        let msgs = byTopic.get(a.topic)
        if (!msgs) byTopic.set(a.topic, (msgs = []))
        a.records.forEach((r, i) => msgs!.push({ key: r.key, value: r.value, partition: a.partitions[i]! }))
      }
      try {
        const meta = await this.producer.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        })
        // Messages keep their order within a partition in the request, so each gets base + index.
        const next = new Map<string, number>()
        for (const m of meta) next.set(`${m.topicName}\u0000${m.partition}`, Number(m.baseOffset))
        for (const a of group) {
          a.resolve(
            a.partitions.map((partition) => {
              const k = `${a.topic}\u0000${partition}`
              const offset = next.get(k)
              if (offset === undefined) throw new LogError('broker', `no offset returned for ${k}`)
              next.set(k, offset + 1)
              return { partition, offset }
            }),
          )
        }
      } catch (err) {
        for (const a of group) a.reject(err)
      }
    }
    this.flushing = undefined
  }

  async consume(options: ConsumeOptions): Promise<Consumer> {
    this.checkOpen()
    const consumer = new KafkaLogConsumer(this, options)
    this.consumers.add(consumer)
    await consumer.start()
    return consumer
  }

  forget(consumer: KafkaLogConsumer): void {
    this.consumers.delete(consumer)
  }

  async committedOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
    this.checkOpen()
    const res = await this.admin.fetchOffsets({ groupId, topics: [topic] })
    const out = new Map<number, number>()
    for (const t of res) {
      for (const p of t.partitions) {
        const o = Number(p.offset)
        if (o >= 0) out.set(p.partition, o)
      }
    }
    return out
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    this.checkOpen()
    const res = await this.admin.fetchTopicOffsets(topic)
    return new Map(res.map((p) => [p.partition, Number(p.high)]))
  }

  /**
   * kafkajs has no group-less fetch, so a one-member group with a unique id reads the partition:
   * it seeks to `from`, pauses the topic's other partitions, collects records up to the end offset
   * read before it started, and leaves without committing (an empty group the broker forgets).
   */
  async readRange(topic: string, partition: number, from: number): Promise<LogRecord[]> {
    this.checkOpen()
    const offsets = await this.admin.fetchTopicOffsets(topic)
    const at = offsets.find((o) => o.partition === partition)
    if (!at) throw new LogError('invalid_partition', `partition ${partition} is not in ${topic}`)
    const end = Number(at.high)
    const start = Math.max(from, Number(at.low))
    if (start >= end) return []
    const out: LogRecord[] = []
    const consumer = this.kafka.consumer({
      groupId: `${this.options.clientId ?? 'adc-core'}.read.${randomUUID()}`,
      maxWaitTimeInMs: 100,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      allowAutoTopicCreation: false,
    })
    let done!: () => void
    const finished = new Promise<void>((resolve) => (done = resolve))
    let timer: NodeJS.Timeout | undefined
    try {
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (batch.partition !== partition) return
          for (const m of batch.messages) {
            const offset = Number(m.offset)
            if (offset < start || offset >= end || offset <= (out.at(-1)?.offset ?? -1)) continue
            out.push({ topic, partition, offset, key: m.key?.toString('utf8') ?? '', value: m.value?.toString('utf8') ?? '', timestamp: Number(m.timestamp) })
          }
          if (Number(batch.lastOffset()) >= end - 1) done()
        },
      })
      consumer.seek({ topic, partition, offset: String(start) })
      const others = offsets.map((o) => o.partition).filter((p) => p !== partition)
      if (others.length > 0) consumer.pause([{ topic, partitions: others }])
      await Promise.race([
        finished,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new LogError('broker', `reading ${topic}/${partition} from ${start} to ${end} timed out`, { retriable: true })), 60_000)
        }),
      ])
    } finally {
      clearTimeout(timer)
      await consumer.disconnect()
    }
    return out
  }

  async truncate(topic: string, partition: number, before: number): Promise<void> {
    this.checkOpen()
    if (before <= 0) return
    await this.admin.deleteTopicRecords({ topic, partitions: [{ partition, offset: String(before) }] })
  }

  async lowOffset(topic: string, partition: number): Promise<number> {
    const res = await this.admin.fetchTopicOffsets(topic)
    return Number(res.find((p) => p.partition === partition)?.low ?? 0)
  }

  async close(): Promise<void> {
    if (this.closed) return
    await Promise.all([...this.consumers].map((c) => c.stop()))
    this.closed = true
    await this.flushing
    await Promise.all([this.producer.disconnect(), this.admin.disconnect()])
  }
}

/**
 * One group member: a kafkajs consumer subscribed to one topic. kafkajs uses the eager protocol and
 * rejoins between batches, so a GROUP_JOIN never happens while a batch is in flight; onRevoke and
 * onAssign run from the join's assignment diff, and every batch waits for them first.
 */
class KafkaLogConsumer implements Consumer {
  private readonly consumer: KafkaConsumer
  private assigned = new Set<number>()
  /** onRevoke/onAssign calls, in order; batches wait for it so onAssign precedes delivery. */
  private transitions: Promise<void> = Promise.resolve()
  /** Bumped on each join and on rebalance notices, so an in-flight batch can tell it went stale. */
  private epoch = 0
  private running = false
  private stopping: Promise<void> | undefined
  private readonly committed = new Map<number, number>()
  private readonly failures = new Map<number, number>()
  /** Assigned partitions whose onAssign has not succeeded yet: not delivered, retried with backoff. */
  private readonly unready = new Set<number>()
  private assignRetryAt = 0
  private assignFailures = 0
  /** The retry of a failed onAssign when no batch comes to retry it (an idle partition). */
  private assignTimer: ReturnType<typeof setTimeout> | undefined
  private readonly removeListeners: (() => void)[] = []
  private firstJoin!: () => void

  constructor(
    private readonly log: KafkaLog,
    private readonly options: ConsumeOptions,
  ) {
    const c = log.options.consumer ?? {}
    this.consumer = log.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: c.sessionTimeout ?? 30_000,
      heartbeatInterval: c.heartbeatInterval ?? 3_000,
      maxWaitTimeInMs: c.maxWaitTimeInMs ?? 1_000,
      maxBytesPerPartition: c.maxBytesPerPartition ?? 16 * 1024 * 1024,
      maxBytes: c.maxBytes ?? 48 * 1024 * 1024,
      allowAutoTopicCreation: false,
    })
  }

  private get logger(): Logger {
    return this.log.logger
  }

  private enqueue(step: () => Promise<void>): void {
    this.transitions = this.transitions.then(step).catch((err: unknown) => {
      this.logger.error({ err, groupId: this.options.groupId, topic: this.options.topic }, 'onAssign/onRevoke failed')
    })
  }

  private setAssignment(next: Set<number>): void {
    const revoked = [...this.assigned].filter((p) => !next.has(p)).sort((a, b) => a - b)
    const added = [...next].filter((p) => !this.assigned.has(p)).sort((a, b) => a - b)
    this.assigned = next
    // onRevoke only for partitions whose onAssign went through.
    const wasReady = revoked.filter((p) => !this.unready.has(p))
    for (const p of revoked) {
      this.committed.delete(p)
      this.failures.delete(p)
      this.unready.delete(p)
    }
    if (wasReady.length > 0 && this.options.onRevoke) {
      const onRevoke = this.options.onRevoke
      this.enqueue(() => onRevoke(wasReady))
    }
    for (const p of added) this.unready.add(p)
    if (added.length > 0) {
      this.assignRetryAt = 0
      this.enqueue(() => this.tryAssign())
    }
  }

  /** Calls onAssign for the partitions not ready yet; on failure they wait, with backoff. */
  private async tryAssign(): Promise<void> {
    if (this.unready.size === 0) return
    const wait = this.assignRetryAt - Date.now()
    if (wait > 0) {
      // Too early (a timer may fire a millisecond before the wall clock says its time has come):
      // retry then, or an idle partition would never be tried again.
      this.scheduleAssignRetry(wait)
      return
    }
    const pending = [...this.unready].sort((a, b) => a - b)
    try {
      await this.options.onAssign?.(pending)
      for (const p of pending) this.unready.delete(p)
      this.assignFailures = 0
    } catch (err) {
      this.assignFailures++
      const backoff = Math.min(5000, (this.log.options.consumer?.retryBackoffMs ?? 200) * 2 ** (this.assignFailures - 1))
      this.assignRetryAt = Date.now() + backoff
      this.logger.error({ err, groupId: this.options.groupId, topic: this.options.topic, partitions: pending, backoffMs: backoff }, 'onAssign failed; retrying before delivering these partitions')
      this.scheduleAssignRetry(backoff)
    }
  }

  /**
   * Retries onAssign after `ms` whether or not records arrive: a batch retries it too, but a
   * partition without traffic would otherwise stay unready (unclaimed, not reported as assigned)
   * after one transient failure, for as long as it stays idle.
   */
  private scheduleAssignRetry(ms: number): void {
    if (this.assignTimer) return
    this.assignTimer = setTimeout(() => {
      this.assignTimer = undefined
      if (this.running && this.unready.size > 0) this.enqueue(() => this.tryAssign())
    }, ms)
    this.assignTimer.unref?.()
  }

  async start(): Promise<void> {
    const { events } = this.consumer
    const joined = new Promise<void>((resolve) => (this.firstJoin = resolve))
    this.removeListeners.push(
      this.consumer.on(events.GROUP_JOIN, (e) => {
        this.epoch++
        const parts = e.payload.memberAssignment[this.options.topic] ?? []
        this.setAssignment(new Set(parts))
        this.firstJoin()
      }),
      this.consumer.on(events.REBALANCING, () => {
        this.epoch++
      }),
      this.consumer.on(events.CRASH, (e) => {
        // A crashed member has left the group: treat everything as revoked; the restart rejoins.
        this.epoch++
        this.setAssignment(new Set())
        const level = e.payload.restart ? 'warn' : 'fatal'
        this.logger[level]({ err: e.payload.error, groupId: this.options.groupId, topic: this.options.topic, restart: e.payload.restart }, 'kafka consumer crashed')
      }),
    )
    await this.consumer.connect()
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: this.options.fromBeginning ?? true })
    this.running = true
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.eachBatch(payload),
    })
    // Return once the member holds its first assignment (or give up waiting; it keeps trying).
    await Promise.race([joined, new Promise((r) => setTimeout(r, 30_000).unref())])
  }

  assignment(): number[] {
    return [...this.assigned].sort((a, b) => a - b)
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    await this.transitions
    const { batch } = payload
    const partition = batch.partition
    if (!this.assigned.has(partition) || !this.running) return
    if (this.unready.has(partition)) {
      const retry = (): Promise<void> => this.tryAssign()
      this.transitions = this.transitions.then(retry)
      await this.transitions
      if (this.unready.has(partition)) {
        // Nothing resolved: kafkajs fetches these records again once the pause ends.
        this.pauseFor(payload, Math.max(50, this.assignRetryAt - Date.now()))
        return
      }
    }
    const epoch = this.epoch
    const maxRecords = this.options.maxBatchRecords ?? 5000
    const all: LogRecord[] = batch.messages.map((m) => ({
      topic: batch.topic,
      partition,
      offset: Number(m.offset),
      key: m.key?.toString('utf8') ?? '',
      value: m.value?.toString('utf8') ?? '',
      timestamp: Number(m.timestamp),
    }))
    const highWatermark = Number(batch.highWatermark)
    const heartbeatMs = this.log.options.consumer?.heartbeatInterval ?? 3_000
    const isStale = (): boolean => payload.isStale() || this.epoch !== epoch || !this.assigned.has(partition)
    // kafkajs heartbeats only between batches; keep the membership alive during a long sink write
    // and learn early that a rebalance started (isStale turns true).
    const beat = setInterval(() => {
      payload.heartbeat().catch((err: unknown) => {
        if (REBALANCE_ERRORS.has(errorType(err) ?? '')) this.epoch++
      })
    }, heartbeatMs)
    try {
      for (let i = 0; i < all.length; i += maxRecords) {
        if (!payload.isRunning() || isStale()) return
        const records = all.slice(i, i + maxRecords)
        const from = records[0]!.offset
        let resolved = -1
        const ctx: BatchContext = {
          resolveOffset: (offset) => {
            if (offset > resolved) {
              resolved = offset
              payload.resolveOffset(String(offset))
            }
          },
          commit: async () => {
            if (resolved < 0) return
            if (isStale()) throw new LogError('stale_partition', `partition ${partition} of ${batch.topic} is being reassigned; not committing`)
            const offset = resolved + 1
            if ((this.committed.get(partition) ?? -1) >= offset) return
            try {
              await payload.commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition, offset: String(offset) }] }] })
              this.committed.set(partition, offset)
            } catch (err) {
              if (REBALANCE_ERRORS.has(errorType(err) ?? '')) {
                this.epoch++
                throw new LogError('stale_partition', `partition ${partition} of ${batch.topic} was reassigned; commit refused`, { cause: err })
              }
              throw new LogError('broker', `commit failed for ${batch.topic}/${partition}`, { retriable: true, cause: err })
            }
          },
          isRunning: () => payload.isRunning(),
          isStale,
        }
        const chunk: Batch = { topic: batch.topic, partition, records, highWatermark }
        try {
          await this.options.onBatch(chunk, ctx)
        } catch (err) {
          await this.redeliverAfterFailure(payload, partition, from, err)
          return
        }
        this.failures.delete(partition)
        if (resolved < records.at(-1)!.offset) {
          // Not all resolved: kafkajs fetches again from the resolved position. Pause briefly so a
          // handler that keeps declining records does not spin.
          this.pauseFor(payload, this.log.options.consumer?.retryBackoffMs ?? 200)
          return
        }
      }
    } finally {
      clearInterval(beat)
    }
  }

  /** Seeks back to the last committed offset, so the failed records come again after a backoff. */
  private async redeliverAfterFailure(payload: EachBatchPayload, partition: number, from: number, err: unknown): Promise<void> {
    const failures = (this.failures.get(partition) ?? 0) + 1
    this.failures.set(partition, failures)
    const backoff = Math.min(5000, (this.log.options.consumer?.retryBackoffMs ?? 200) * 2 ** (failures - 1))
    const { topic } = this.options
    let target = this.committed.get(partition)
    try {
      if (target === undefined) {
        const fromGroup = (await this.log.committedOffsets(this.options.groupId, topic)).get(partition)
        target = fromGroup ?? ((this.options.fromBeginning ?? true) ? await this.log.lowOffset(topic, partition) : from)
      }
    } catch (lookupErr) {
      this.logger.warn({ err: lookupErr, topic, partition }, 'could not read the committed offset; redelivering from the failed batch')
      target = from
    }
    this.logger.error({ err, groupId: this.options.groupId, topic, partition, offset: from, failures, backoffMs: backoff, seekTo: target }, 'onBatch failed; delivering again from the committed offset')
    try {
      this.consumer.seek({ topic, partition, offset: String(target) })
    } catch (seekErr) {
      // Only when the consumer is stopping: the group then resumes from the committed offset anyway.
      this.logger.warn({ err: seekErr, topic, partition }, 'seek after a failed batch was refused')
    }
    this.pauseFor(payload, backoff)
  }

  private pauseFor(payload: EachBatchPayload, ms: number): void {
    const resume = payload.pause()
    setTimeout(() => {
      if (this.running) resume()
    }, ms).unref()
  }

  async stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.running = false
      if (this.assignTimer) clearTimeout(this.assignTimer)
      this.assignTimer = undefined
      try {
        // disconnect() stops the runner (waiting for the in-flight batch) and leaves the group.
        await this.consumer.disconnect()
      } finally {
        for (const remove of this.removeListeners) remove()
        this.firstJoin?.()
        this.setAssignment(new Set())
        await this.transitions
        this.log.forget(this)
      }
    })()
    return this.stopping
  }
}
