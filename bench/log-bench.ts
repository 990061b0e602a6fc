/**
 * Log throughput: produce and consume a bounded number of records through the `Log` port, on the
 * embedded LMDB log and, when KAFKA_BROKERS is set, on Kafka; prints both and their ratio.
 *
 *   node --import tsx bench/log-bench.ts            # embedded only
 *   KAFKA_BROKERS=127.0.0.1:19092 node --import tsx bench/log-bench.ts
 *
 * Env: LOG_BENCH_RECORDS (100000), LOG_BENCH_VALUE_BYTES (300), LOG_BENCH_PARTITIONS (4).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { pino } from 'pino'
import { ulid } from 'ulid'
import { createEmbeddedLog } from '../core/src/log/embedded-log.js'
import { createKafkaLog } from '../core/src/log/kafka-log.js'
import type { Log, ProducerRecord } from '../core/src/log/log.js'
import { createRestProxy } from '../core/src/gateway/rest-proxy.js'
import { serve } from '@hono/node-server'
import type { AddressInfo } from 'node:net'

export interface LogBenchOptions {
  /** @default 100_000 */
  records?: number
  /** Approximate size of each value, like an envelope. @default 300 */
  valueBytes?: number
  /** @default 4 */
  partitions?: number
  /** Records per append call (the gateway appends one REST batch per call). @default 500 */
  batchSize?: number
  /** Append calls in flight at once. @default 8 */
  concurrency?: number
  /** Kafka bootstrap brokers; unset skips Kafka. @default process.env.KAFKA_BROKERS */
  brokers?: string[]
  /** Gives up on consuming after this long. @default 120_000 */
  timeoutMs?: number
}

export interface LogFigures {
  records: number
  produceSeconds: number
  produceRecordsPerSecond: number
  consumeSeconds: number
  consumeRecordsPerSecond: number
}

/**
 * Core's REST proxy gateway (in process, no sockets: its own parsing, validation and append) against
 * `log.append` of the same records, both at the same batch size and concurrency, by CPU time.
 */
export interface GatewayFigures {
  records: number
  gatewayRecordsPerCpuSecond: number
  directRecordsPerCpuSecond: number
  /** gateway / direct (1 = the gateway costs nothing beyond the append) */
  ratio: number
  gatewayRecordsPerSecond: number
  /** `log.append` records per second (wall), same batches and concurrency. */
  directRecordsPerSecond: number
  /**
   * The gateway over real HTTP on loopback (node-server, keep-alive fetch, the same bodies the edge
   * sends), records per second (wall): the figure a producer sees.
   */
  httpRecordsPerSecond: number
  /** httpRecordsPerSecond / directRecordsPerSecond: the REST hop's share of produce throughput. */
  throughputRatio: number
}

export interface LogBenchResult {
  records: number
  valueBytes: number
  partitions: number
  embedded: LogFigures
  kafka?: LogFigures
  gateway: { embedded: GatewayFigures; kafka?: GatewayFigures }
  /** embedded / kafka, per direction (above 1: the embedded log is faster). */
  ratio?: { produce: number; consume: number }
}

function makeRecords(n: number, valueBytes: number): ProducerRecord[] {
  const pad = 'x'.repeat(Math.max(0, valueBytes - 120))
  return Array.from({ length: n }, (_, i) => {
    const key = ulid()
    const value = JSON.stringify({ v: 1, type: 'impression', impressionId: key, seq: i, receivedAt: Date.now(), pad })
    return { key, value }
  })
}

async function measure(log: Log, records: ProducerRecord[], o: Required<Omit<LogBenchOptions, 'brokers'>>): Promise<LogFigures> {
  const topic = `bench-${randomBytes(4).toString('hex')}`
  await log.ensureTopic(topic, o.partitions)

  const t0 = performance.now()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < records.length) {
      const start = next
      next += o.batchSize
      await log.append(topic, records.slice(start, start + o.batchSize))
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  const produceSeconds = (performance.now() - t0) / 1000

  const t1 = performance.now()
  let consumed = 0
  let done!: () => void
  const finished = new Promise<void>((r) => (done = r))
  const consumer = await log.consume({
    groupId: `bench-${randomBytes(4).toString('hex')}`,
    topic,
    onBatch: async (batch, ctx) => {
      consumed += batch.records.length
      ctx.resolveOffset(batch.records.at(-1)!.offset)
      await ctx.commit()
      if (consumed >= records.length) done()
    },
  })
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    finished,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`consumed ${consumed}/${records.length} within ${o.timeoutMs} ms`)), o.timeoutMs)
    }),
  ]).finally(() => clearTimeout(timer))
  const consumeSeconds = (performance.now() - t1) / 1000
  await consumer.stop()
  return {
    records: records.length,
    produceSeconds: round(produceSeconds),
    produceRecordsPerSecond: Math.round(records.length / produceSeconds),
    consumeSeconds: round(consumeSeconds),
    consumeRecordsPerSecond: Math.round(records.length / consumeSeconds),
  }
}

const round = (x: number): number => Math.round(x * 1000) / 1000

async function runBatches(records: ProducerRecord[], o: { batchSize: number; concurrency: number }, send: (batch: ProducerRecord[]) => Promise<void>): Promise<{ cpuSeconds: number; seconds: number }> {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (next < records.length) {
      const start = next
      next += o.batchSize
      await send(records.slice(start, start + o.batchSize))
    }
  }))
  const c = process.cpuUsage(c0)
  return { cpuSeconds: (c.user + c.system) / 1e6, seconds: (performance.now() - t0) / 1000 }
}

async function measureGateway(log: Log, records: ProducerRecord[], o: Required<Omit<LogBenchOptions, 'brokers'>>): Promise<GatewayFigures> {
  const topic = `gw-${randomBytes(4).toString('hex')}`
  await log.ensureTopic(topic, o.partitions)
  const app = createRestProxy({ log, topics: [topic] })
  // The edge's produce bodies: the values are JSON objects inside the request.
  const bodyOf = (batch: ProducerRecord[]) => `{"records":[${batch.map((r) => `{"key":${JSON.stringify(r.key)},"value":${r.value}}`).join(',')}]}`
  const direct = await runBatches(records, o, async (batch) => {
    await log.append(topic, batch)
  })
  const gw = await runBatches(records, o, async (batch) => {
    const res = await app.request(`/topics/${topic}`, { method: 'POST', headers: { 'content-type': 'application/vnd.kafka.json.v2+json' }, body: bodyOf(batch) })
    if (res.status !== 200) throw new Error(`gateway answered ${res.status}`)
    await res.arrayBuffer()
  })
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  let http: { seconds: number }
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/topics/${topic}`
    http = await runBatches(records, o, async (batch) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/vnd.kafka.json.v2+json' }, body: bodyOf(batch) })
      if (res.status !== 200) throw new Error(`gateway answered ${res.status}`)
      await res.arrayBuffer()
    })
  } finally {
    await new Promise((r) => server.close(() => r(undefined)))
  }
  const gwRate = records.length / gw.cpuSeconds
  const directRate = records.length / direct.cpuSeconds
  const directWall = records.length / direct.seconds
  const httpWall = records.length / http.seconds
  return {
    records: records.length, gatewayRecordsPerCpuSecond: Math.round(gwRate), directRecordsPerCpuSecond: Math.round(directRate),
    ratio: round(gwRate / directRate), gatewayRecordsPerSecond: Math.round(records.length / gw.seconds),
    directRecordsPerSecond: Math.round(directWall), httpRecordsPerSecond: Math.round(httpWall), throughputRatio: round(httpWall / directWall),
  }
}

export async function runLogBench(options: LogBenchOptions = {}): Promise<LogBenchResult> {
  const o = {
    records: options.records ?? 100_000,
    valueBytes: options.valueBytes ?? 300,
    partitions: options.partitions ?? 4,
    batchSize: options.batchSize ?? 500,
    concurrency: options.concurrency ?? 8,
    timeoutMs: options.timeoutMs ?? 120_000,
  }
  const brokers = options.brokers ?? process.env.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter(Boolean) ?? []
  const logger = pino({ level: 'warn' })
  const records = makeRecords(o.records, o.valueBytes)
  const result: LogBenchResult = { records: o.records, valueBytes: Buffer.byteLength(records[0]!.value), partitions: o.partitions, embedded: undefined as unknown as LogFigures, gateway: undefined as unknown as LogBenchResult['gateway'] }

  const dir = mkdtempSync(join(tmpdir(), 'adc-log-bench-'))
  try {
    const embedded = await createEmbeddedLog({ dir, logger })
    try {
      result.embedded = await measure(embedded, records, o)
      result.gateway = { embedded: await measureGateway(embedded, records, o) }
    } finally {
      await embedded.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  if (brokers.length > 0) {
    const kafka = await createKafkaLog({ brokers, clientId: 'adc-log-bench', logger })
    try {
      result.kafka = await measure(kafka, records, o)
      result.gateway.kafka = await measureGateway(kafka, records, o)
    } finally {
      await kafka.close()
    }
    result.ratio = {
      produce: round(result.embedded.produceRecordsPerSecond / result.kafka.produceRecordsPerSecond),
      consume: round(result.embedded.consumeRecordsPerSecond / result.kafka.consumeRecordsPerSecond),
    }
  }
  return result
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const num = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined)
  runLogBench({ records: num('LOG_BENCH_RECORDS'), valueBytes: num('LOG_BENCH_VALUE_BYTES'), partitions: num('LOG_BENCH_PARTITIONS') })
    .then((r) => {
      console.log(JSON.stringify(r, null, 2))
      if (!r.kafka) console.log('(KAFKA_BROKERS unset: Kafka skipped; scripts/kafka/start.sh starts a local broker)')
    })
    .catch((err: unknown) => {
      console.error(err)
      process.exitCode = 1
    })
}
