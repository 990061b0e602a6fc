import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs'
import { pino } from 'pino'
import { expect, it } from 'vitest'
import { createKafkaLog } from './kafka-log.js'
import { runLogContract } from '../testing/log.contract.js'
import { describeNeeding } from '../testing/needs.js'
import { kafkaBroker } from '../testing/tools.js'

// Runs against a real broker: `export $(scripts/kafka/start.sh | tail -1)` starts one on 127.0.0.1.
const brokers = process.env.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter(Boolean) ?? []

describeNeeding('Log contract: kafka', kafkaBroker(brokers.length > 0), () => {
  runLogContract({
    name: `kafka (${brokers.join(',')})`,
    // Short heartbeats and fetch waits keep rebalances in the suite to about a second.
    newLog: () =>
      createKafkaLog({
        brokers,
        clientId: 'adc-log-contract',
        logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
        consumer: { heartbeatInterval: 300, sessionTimeout: 10_000, maxWaitTimeInMs: 200, retryBackoffMs: 50 },
      }),
    settleMs: 30_000,
  })
})

describeNeeding('Kafka topics by kind', kafkaBroker(brokers.length > 0), () => {
  it('creates a retained topic (the state changelog) with no time or size retention, and a plain one with the broker default', async () => {
    const log = await createKafkaLog({ brokers, clientId: 'adc-topic-config', logger: pino({ level: 'silent' }) })
    const admin = new Kafka({ brokers, clientId: 'adc-topic-config-check', logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      const suffix = Math.random().toString(36).slice(2, 8)
      const [retained, plain] = [`retained-${suffix}`, `plain-${suffix}`]
      await log.ensureTopic(retained, 1, { retained: true })
      await log.ensureTopic(plain, 1)
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [retained, plain].map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['retention.ms', 'retention.bytes'] })),
      })
      const configOf = (name: string) => Object.fromEntries(resources.find((r) => r.resourceName === name)!.configEntries.map((e) => [e.configName, e.configValue]))
      expect(configOf(retained)).toEqual({ 'retention.ms': '-1', 'retention.bytes': '-1' })
      expect(configOf(plain)['retention.ms']).not.toBe('-1')
    } finally {
      await admin.disconnect()
      await log.close()
    }
  })

  it("dates every record by the broker's append, not by the time its producer wrote (a forged far-future timestamp)", async () => {
    const log = await createKafkaLog({ brokers, clientId: 'adc-topic-time', logger: pino({ level: 'silent' }), consumer: { maxWaitTimeInMs: 200 } })
    const producer = new Kafka({ brokers, clientId: 'adc-topic-time-forger', logLevel: logLevel.NOTHING }).producer()
    await producer.connect()
    try {
      const topic = `timed-${Math.random().toString(36).slice(2, 8)}`
      await log.ensureTopic(topic, 1)
      const forged = Date.UTC(9000, 0, 1)
      const before = Date.now()
      await producer.send({ topic, messages: [{ key: 'k', value: 'v', timestamp: String(forged) }] })
      let seen: number | undefined
      let done!: () => void
      const got = new Promise<void>((r) => (done = r))
      const consumer = await log.consume({
        groupId: `${topic}-g`, topic,
        async onBatch(b) {
          seen = b.records[0]!.timestamp
          done()
        },
      })
      await got
      await consumer.stop()
      expect(seen).toBeGreaterThanOrEqual(before - 60_000)
      expect(seen).toBeLessThan(Date.now() + 60_000)
    } finally {
      await producer.disconnect()
      await log.close()
    }
  })
})
