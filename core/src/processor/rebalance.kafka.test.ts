import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { pino } from 'pino'
import { createKafkaLog } from '../log/kafka-log.js'
import type { CrashPoint } from './batch-write.js'
import { runHandoff } from '../testing/handoff-scenario.js'
import { describeNeeding } from '../testing/needs.js'
import { useScratchEngine } from '../testing/scratch-engine.js'
import { kafkaBroker } from '../testing/tools.js'

// The handoff scenario on a real Kafka broker: `export $(scripts/kafka/start.sh | tail -1)`.
//
// Both processors run in this process, each with its own Kafka client (its own group member,
// producer and admin connection) and state directory, sharing one ClickHouse client: chDB allows
// one process per data directory, and the handoff is only exact if the replayed range meets the
// dead owner's writes in the SAME ClickHouse tables (that is what the dedup tokens are for).
// The kill: A's batch stops dead at the crash point (nothing after it runs; its in-memory state is
// gone), then A's client leaves the group. A SIGKILLed member would instead be evicted after the
// session timeout; the durable state left behind, which is what the handoff works from, is the same.
const brokers = process.env.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter(Boolean) ?? []

describeNeeding('partition handoff between processors: kafka', kafkaBroker(brokers.length > 0), () => {
  describe(`partition handoff between processors (kafka ${brokers.join(',')})`, () => {
    const engine = useScratchEngine('adc-rebalance-kafka-')
    const run = Math.random().toString(36).slice(2, 8)
    let seq = 0

    const scenario = (killAt: CrashPoint, { changelog = true, newMachine = false, snapshotMinChars = 0 } = {}) => {
      const n = ++seq
      const suffix = `${run}-${n}`
      return runHandoff({
        newLog: (name) =>
          createKafkaLog({
            brokers,
            clientId: `adc-handoff-${name}`,
            logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
            retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
            consumer: { heartbeatInterval: 300, sessionTimeout: 10_000, maxWaitTimeInMs: 100, retryBackoffMs: 50 },
          }),
        closeLog: (log) => log.close(),
        clickhouse: engine.client,
        database: `adc_handoff_k${n}`,
        root: join(engine.root, `run${n}`),
        changelog,
        killAt,
        newMachine,
        ...(snapshotMinChars ? { snapshotMinChars } : {}),
        perPhase: 300,
        timeoutMs: 40_000,
        groupId: `handoff-${suffix}`,
        topics: { events: `ad-events-h-${suffix}`, edgeStats: `edge-stats-h-${suffix}`, changelog: `adc-state-changelog-h-${suffix}` },
      })
    }

    it('A killed after its sink writes, its state directory deleted (a new machine): totals exact', async () => {
      const { totals, expected, killed } = await scenario('after_sink', { newMachine: true })
      expect(killed).toBe(true)
      expect(totals).toEqual(expected)
    }, 60_000)

    it('A killed mid-sink, B takes every partition; snapshots truncate the changelog: totals exact', async () => {
      const { totals, expected, killed, changelogStart } = await scenario('mid_sink', { snapshotMinChars: 30_000 })
      expect(changelogStart.every((o) => o > 0)).toBe(true)
      expect(killed).toBe(true)
      expect(totals).toEqual(expected)
    }, 60_000)

    it('negative control: without the changelog handoff the totals are wrong', async () => {
      const { totals, expected, killed } = await scenario('mid_sink', { changelog: false, newMachine: true })
      expect(killed).toBe(true)
      expect(totals.impressions).toBeGreaterThan(expected.impressions)
      expect(totals.clicks).toBeLessThan(expected.clicks)
    }, 60_000)
  })
})
