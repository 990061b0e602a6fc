/**
 * Which DedupeShard judges an event, and the stub that reaches it.
 */
import { partitionFor } from '@adc/schemas'
import type { Env } from '../env.js'
import { timeBucketOf } from './dedupe-key.js'

/**
 * The DedupeShard that judges an event: Kafka's murmur2 partitioner over the publisher and the event
 * id's creation time to 1.024 s, written as a ULID's first 8 characters (for a ULID, exactly those
 * characters; for a UUIDv7, its 48-bit time encoded the same way, so both forms made in one second
 * meet on one shard). Both are inputs of the idempotency key, so a retry reaches the same shard
 * whatever batch it travels in; and the events a client batches together were made within a second
 * or two, so a batch usually costs one shard RPC, not one per shard (hashing the impressionId spread
 * every batch over all N shards). A publisher's load moves to another shard every second, and
 * publishers spread over the shards.
 */
export function dedupeShardOf(publisherId: string, eventId: string, shards: number): number {
  return partitionFor(`${publisherId}\u001f${timeBucketOf(eventId)}`, shards)
}

/** The DedupeShard Durable Object with this number. */
export function shardFor(env: Env, shard: number) {
  return env.DEDUPE_SHARD.get(env.DEDUPE_SHARD.idFromName(`shard:${shard}`))
}
