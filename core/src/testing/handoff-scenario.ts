/**
 * The partition handoff scenario shared by rebalance.test.ts (embedded log) and
 * rebalance.kafka.test.ts (a real Kafka broker): two processors in one consumer group, each with its
 * own state directory, writing one ClickHouse database.
 *
 * 1. A alone processes phase 1 (impressions).
 * 2. B joins: the partitions B takes hold impressions only A has seen.
 * 3. Phase 2 (clicks for phase-1 impressions, re-sent phase-1 impressions, new impressions with
 *    clicks) while A is killed at a crash point mid-stream (its batch stops there, nothing after it
 *    happens, it leaves): B takes A's partitions. Variant `newMachine`: A's state directory is then
 *    deleted and a fresh processor A' joins with it empty, taking partitions back.
 * 4. Phase 3 (re-sent phase-2 impressions, clicks for phase-2 impressions).
 * The totals a correct processor ends with are computed from the generated traffic.
 */
import { EVENTS_TOPIC, EDGE_STATS_TOPIC, STATE_CHANGELOG_TOPIC } from '@adc/schemas'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import type { ClickHouseClient } from '../clickhouse/client.js'
import { migrate } from '../clickhouse/client.js'
import type { Log, ProducerRecord } from '../log/log.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import type { CrashPoint } from '../processor/batch-write.js'
import { testEnvelope, toRecord } from './events.js'
import { createProcessor, type Processor } from '../processor/processor.js'

export interface HandoffOptions {
  /** A log client for the producer and for each processor (the embedded log returns one shared instance). */
  newLog(name: string): Promise<Log>
  /** Closes a client `newLog` made (no-op for a shared embedded log). */
  closeLog(log: Log): Promise<void>
  clickhouse: ClickHouseClient
  database: string
  root: string
  /** Changelog handoff on (off: the negative control). */
  changelog: boolean
  killAt: CrashPoint
  /** After the kill, delete A's state and start a fresh processor on it. */
  newMachine: boolean
  /** Impressions per phase. @default 400 */
  perPhase?: number
  timeoutMs?: number
  /** Topic names, unique per run on a shared broker. @default ad-events, edge-stats, adc-state-changelog */
  topics?: { events: string; edgeStats: string; changelog: string }
  /** Consumer group. @default handoff */
  groupId?: string
  /** Changelog snapshot threshold (small: snapshots and truncation happen during the run). */
  snapshotMinChars?: number
  snapshotMaxAgeMs?: number
}

export interface HandoffTotals {
  impressions: number
  clicks: number
  duplicates: number
  orphans: number
  repeats: number
  ivt: number
  raw_events: number
  raw_rows: number
  bad_rows: number
}

const START = Date.UTC(2026, 10, 23, 12, 0, 0)

/** Phases of traffic and the totals they must produce. */
export function handoffTraffic(per: number): { phases: ProducerRecord[][]; expected: HandoffTotals } {
  const imp = (i: number): ProducerRecord => toRecord(testEnvelope({ type: 'impression', n: 2 * i, impressionId: `imp_h_${i}`, ts: START + i * 20, userKey: `u${i % 997}` }))
  const click = (i: number): ProducerRecord => toRecord(testEnvelope({ type: 'click', n: 2 * i + 1, impressionId: `imp_h_${i}`, ts: START + i * 20 + 5_000, userKey: `u${i % 997}` }))
  const p1: ProducerRecord[] = []
  const p2: ProducerRecord[] = []
  const p3: ProducerRecord[] = []
  let clicks = 0
  let duplicates = 0
  for (let i = 0; i < per; i++) p1.push(imp(i))
  for (let i = 0; i < per; i++) {
    if (i % 3 === 0) (p2.push(click(i)), clicks++) // its impression was seen by the old owner
    if (i % 5 === 0) (p2.push(imp(i)), duplicates++) // a re-send the old owner's state knows
  }
  for (let i = per; i < 2 * per; i++) {
    p2.push(imp(i))
    if (i % 3 === 0) (p2.push(click(i)), clicks++)
  }
  for (let i = per; i < 2 * per; i++) {
    if (i % 4 === 1) (p3.push(imp(i)), duplicates++)
    if (i % 3 === 1) (p3.push(click(i)), clicks++)
  }
  const records = p1.length + p2.length + p3.length
  return {
    phases: [p1, p2, p3],
    expected: { impressions: 2 * per, clicks, duplicates, orphans: 0, repeats: 0, ivt: 0, raw_events: records, raw_rows: records, bad_rows: 0 },
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function until(what: string, timeoutMs: number, ok: () => boolean | Promise<boolean>, detail: () => unknown = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(detail())}`)
    await sleep(25)
  }
}

export async function runHandoff(o: HandoffOptions): Promise<{ totals: HandoffTotals; expected: HandoffTotals; killed: boolean; changelogStart: number[] }> {
  const timeoutMs = o.timeoutMs ?? 30_000
  const { phases, expected } = handoffTraffic(o.perPhase ?? 400)
  const topics = o.topics ?? { events: EVENTS_TOPIC, edgeStats: EDGE_STATS_TOPIC, changelog: STATE_CHANGELOG_TOPIC }
  const GROUP = o.groupId ?? 'handoff'
  const producer = await o.newLog('producer')
  await producer.ensureTopic(topics.events, 4)
  await producer.ensureTopic(topics.edgeStats, 1)
  await migrate(o.clickhouse, o.database)
  let appended = 0
  const append = async (recs: ProducerRecord[]): Promise<void> => {
    for (let i = 0; i < recs.length; i += 500) await producer.append(topics.events, recs.slice(i, i + 500))
    appended += recs.length
  }
  const committed = async (): Promise<number> => [...(await producer.committedOffsets(GROUP, topics.events)).values()].reduce((a, b) => a + b, 0)

  // A's kill switch: once armed, the 2nd time A reaches `killAt` it dies there, and stays dead.
  let armed = false
  let hits = 0
  let dead = false
  let died!: () => void
  const death = new Promise<void>((r) => (died = r))
  const killHook = (point: CrashPoint): void => {
    if (!dead && armed && point === o.killAt && ++hits === 2) {
      dead = true
      died()
    }
    if (dead) throw new Error(`killed at ${point}`)
  }

  const logs: Log[] = []
  const make = async (name: string, crashPoint?: (p: CrashPoint) => void, maxBatchRecords = 60): Promise<Processor> => {
    const log = await o.newLog(name)
    logs.push(log)
    return createProcessor({
      log, clickhouse: o.clickhouse, database: o.database, stateDir: join(o.root, name), groupId: GROUP,
      logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }).child({ processor: name }),
      registry: createMetricsRegistry({ defaultMetrics: false }), maxBatchRecords, retryDelayMs: 20, topicPartitions: 4,
      crashPoint: crashPoint ?? (() => {}),
      topics: { events: topics.events, edgeStats: topics.edgeStats },
      ...(o.changelog ? { changelog: { topic: topics.changelog, ...(o.snapshotMinChars ? { snapshotMinChars: o.snapshotMinChars } : {}), ...(o.snapshotMaxAgeMs !== undefined ? { snapshotMaxAgeMs: o.snapshotMaxAgeMs } : {}) } } : {}),
    })
  }
  const owned = (p: Processor): number => Object.keys(p.status().topics[topics.events] ?? {}).length
  const running: Processor[] = []
  /** First offset left in each changelog partition (above 0 once snapshots truncated it). */
  const changelogStart: number[] = []
  try {
    const a = await make('a', killHook)
    running.push(a)
    await a.start()
    await append(phases[0]!)
    await until('A to process phase 1', timeoutMs, async () => (await committed()) >= appended, () => a.status())

    // Different batch sizes: without the recorded intent, B would cut A's pending range differently.
    const b = await make('b', undefined, 45)
    running.push(b)
    await b.start()
    await until('B to own partitions', timeoutMs, () => owned(b) > 0 && owned(a) > 0 && owned(a) + owned(b) === 4, () => [a.status(), b.status()])

    armed = true
    await append(phases[1]!)
    await Promise.race([death, sleep(timeoutMs).then(() => Promise.reject(new Error('A was never killed')))])
    await a.stop() // its in-flight batch died at the crash point; it leaves the group
    running.splice(running.indexOf(a), 1)
    if (o.newMachine) {
      rmSync(join(o.root, 'a'), { recursive: true, force: true })
      const a2 = await make('a', undefined, 80)
      running.push(a2)
      await a2.start()
      await until('A\' to own partitions', timeoutMs, () => owned(a2) > 0 && owned(a2) + owned(b) === 4, () => [a2.status(), b.status()])
    }
    await append(phases[2]!)
    await until('every record to be committed', timeoutMs, async () => (await committed()) >= appended, () => running.map((p) => p.status()))
    if (o.changelog) for (let p = 0; p < 4; p++) changelogStart.push((await producer.readRange(topics.changelog, p, 0))[0]?.offset ?? -1)
  } finally {
    for (const p of running) await p.stop()
    for (const l of logs) await o.closeLog(l)
    await o.closeLog(producer)
  }
  const one = async (query: string): Promise<Record<string, number>> => {
    const [row] = await (await o.clickhouse.query({ query, format: 'JSONEachRow' })).json<Record<string, unknown>>()
    return Object.fromEntries(Object.entries(row ?? {}).map(([k, v]) => [k, Number(v)]))
  }
  const db = o.database
  const totals = {
    ...(await one(`SELECT sum(impressions) impressions, sum(clicks) clicks, sum(duplicates) duplicates, sum(orphan_clicks) orphans, sum(repeat_clicks) repeats, sum(ivt_impressions) + sum(ivt_clicks) ivt FROM ${db}.rollup_minute`)),
    ...(await one(`SELECT sum(sign) raw_events, count() raw_rows FROM ${db}.events_raw`)),
    ...(await one(`SELECT count() bad_rows FROM ${db}.bad_rows`)),
  } as unknown as HandoffTotals
  return { totals, expected, killed: dead, changelogStart }
}
