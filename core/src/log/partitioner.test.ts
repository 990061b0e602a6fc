import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Partitioners } from 'kafkajs'
import { partitionFor } from '@adc/schemas'

// The embedded log, the gateway and Kafka producers must agree on where a key lives, or a click and
// its impression could land in different partitions after switching adapters.
describe('partitionFor', () => {
  const kafkajs = Partitioners.DefaultPartitioner()
  const metadata = (n: number) => Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], offlineReplicas: [], partitionErrorCode: 0 }))
  const viaKafkajs = (key: string, n: number): number =>
    kafkajs({ topic: 't', partitionMetadata: metadata(n), message: { key, value: 'v' } })

  it('agrees with kafkajs DefaultPartitioner on ids and arbitrary unicode keys', () => {
    for (const n of [1, 2, 3, 4, 8, 12, 64]) {
      for (let i = 0; i < 2000; i++) {
        const key = `01J${i.toString(36).toUpperCase().padStart(8, '0')}imp${i}`
        expect(partitionFor(key, n)).toBe(viaKafkajs(key, n))
      }
    }
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 64 }), fc.integer({ min: 1, max: 100 }), (key, n) => {
        expect(partitionFor(key, n)).toBe(viaKafkajs(key, n))
      }),
      { numRuns: 3000 },
    )
  })
})
