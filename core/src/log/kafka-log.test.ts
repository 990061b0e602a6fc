import { pino } from 'pino'
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
