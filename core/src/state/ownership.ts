/**
 * A processor's hold on one partition's state changelog (record format and fold: ./changelog.ts):
 * the claim that takes the partition and restores its state, the fenced append every later
 * changelog record goes through, and the snapshot that bounds the changelog.
 *
 * A partition's state is a pure function of its changelog. On assignment, before any batch, the
 * new owner appends `claim{owner}` (a fresh id) and folds the changelog from the local store's
 * position (0 for a new machine) up to and past the claim. After each append the owner's records
 * must follow its previous one densely, else the records in between are read; a claim by someone
 * else among them fences this owner (FencedError: nothing more is written; the batch stays
 * uncommitted for the new owner). The fold ignores every record an owner writes after someone
 * else's claim.
 *
 * Bounding the changelog: snapshots plus truncation, not Kafka log compaction: a compacted topic
 * keeps the last record per key by offset, but the fold needs record order (claims fence later
 * records of earlier owners, and a zombie's late delta must not overwrite a newer value of the same
 * key). A snapshot is written through `append` (so a fenced owner writes none) and the records
 * before it are deleted only after it is complete; a store whose position fell behind the
 * truncation rebuilds from the snapshot (ChangelogFold `reset`). A snapshot by an owner that is
 * fenced right after its check still holds the state at its `applied`, before the new claim, which
 * the fold then applies on top.
 */
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Log } from '../log/log.js'
import { ChangelogFold, claimedByOther, claimRecord, snapshotRecords } from './changelog.js'
import type { PartitionStore } from './partition-store.js'

/** Characters of changelog records per append (Kafka's default message.max.bytes is 1 MiB per partition batch). */
const CHANGELOG_APPEND_CHARS = 512 * 1024

/** Thrown when another processor claimed the partition: this one must not write it any more. */
export class FencedError extends Error {
  constructor(topic: string, partition: number) {
    super(`partition ${partition} of ${topic} was claimed by another processor`)
    this.name = 'FencedError'
  }
}

export interface OwnershipOptions {
  log: Log
  logger: Logger
  /** The changelog topic (changelog partition p holds the state of source partition p). */
  changelogTopic: string
  /** The source topic, for messages and FencedError. */
  sourceTopic: string
  /** Test-only negative control: claim but do not restore. @default true */
  restore?: boolean
  /**
   * A snapshot of the whole state (and a truncation) once the changelog records since the last
   * snapshot exceed max(this, 2 × that snapshot). @default 16 MiB (characters of JSON)
   */
  snapshotMinChars?: number
  /** Also a snapshot once the last one is this old and records followed it. @default 24 h */
  snapshotMaxAgeMs?: number
}

/** This processor's hold on one partition's changelog. */
export class PartitionOwnership {
  /** Changelog offset of this owner's last record; every record up to it was checked for claims. */
  private lastOwn: number
  private isFenced = false
  /** Characters of changelog records since the last snapshot (what a restore reads), and that snapshot's. */
  private sinceSnapshot = 0
  private snapshotChars = 0
  /** When the last snapshot was written (or the partition claimed), epoch ms. */
  private snapshotAt = Date.now()

  private constructor(private readonly o: OwnershipOptions, readonly partition: number, readonly owner: string, claimOffset: number) {
    this.lastOwn = claimOffset
  }

  /** True once another processor claimed the partition: nothing more may be written for it. */
  get fenced(): boolean {
    return this.isFenced
  }

  /**
   * Takes partition `p`'s changelog: appends a claim (fencing any earlier owner), then folds every
   * record from the store's changelog position up to and including the claim into the local store.
   */
  static async claim(o: OwnershipOptions, p: number, store: PartitionStore): Promise<PartitionOwnership> {
    const topic = o.changelogTopic
    const owner = randomUUID()
    const [claim] = await o.log.append(topic, [claimRecord(p, owner)])
    const own = new PartitionOwnership(o, p, owner, claim!.offset)
    if (o.restore === false) return own
    const t0 = performance.now()
    const fold = new ChangelogFold({ applied: store.appliedOffset(), intent: store.pendingIntent(), position: store.changelogPosition() })
    const records = await o.log.readRange(topic, p, fold.next)
    for (const r of records) {
      fold.add(r)
      own.sinceSnapshot += r.value.length
    }
    if (fold.next <= claim!.offset) throw new Error(`changelog ${topic}/${p} was read only to ${fold.next}, before the claim at ${claim!.offset}`)
    if (fold.owner !== owner) own.isFenced = true // another processor claimed it right after us
    await store.restore(fold.result())
    o.logger.info({ topic: o.sourceTopic, partition: p, records: records.length, fromSnapshot: fold.reset, applied: fold.applied, intent: fold.intent, ms: Math.round(performance.now() - t0) }, 'partition state restored from the changelog')
    return own
  }

  /**
   * Appends this owner's records to the partition's changelog and checks that no other processor
   * claimed the partition since this owner's last record: if the records landed right after it
   * (dense offsets) nothing came between; otherwise what came between is read and looked at.
   * Returns the changelog position after them. Throws FencedError (and stays fenced) if claimed.
   */
  async append(recs: Array<{ key: string; value: string; partition?: number }>): Promise<{ next: number; owner: string; first: number }> {
    const { log, changelogTopic: topic } = this.o
    const partition = recs[0]!.partition!
    let firstOffset = -1
    // Kafka refuses a partition's record batch over message.max.bytes (1 MiB by default): a large
    // delta goes out in several appends (the fold applies its parts only once its delta record came).
    let last = this.lastOwn
    for (let i = 0; i < recs.length; ) {
      let j = i
      for (let size = 0; j < recs.length && (j === i || size + recs[j]!.value.length <= CHANGELOG_APPEND_CHARS); j++) size += recs[j]!.value.length
      const res = await log.append(topic, recs.slice(i, j))
      const first = res[0]!.offset
      if (firstOffset < 0) firstOffset = first
      last = res[res.length - 1]!.offset
      this.sinceSnapshot += recs.slice(i, j).reduce((n, r) => n + r.value.length, 0)
      const dense = first === this.lastOwn + 1 && last === first + res.length - 1
      if (!dense && claimedByOther((await log.readRange(topic, partition, this.lastOwn + 1)).filter((r) => r.offset <= last), this.owner)) {
        this.isFenced = true
        throw new FencedError(this.o.sourceTopic, partition)
      }
      this.lastOwn = last
      i = j
    }
    return { next: last + 1, owner: this.owner, first: firstOffset }
  }

  /**
   * Bounds the changelog: once the records since the last snapshot outgrow max(snapshotMinChars,
   * 2 × that snapshot), writes the whole state as a snapshot (right after a commit: no intent is
   * pending, local state = the fold) and deletes the records before it. A restore then reads at most
   * one snapshot and what followed it. A failed snapshot only delays this (the next batch retries).
   */
  async maybeSnapshot(store: PartitionStore): Promise<void> {
    if (this.isFenced) return
    const bySize = this.sinceSnapshot > Math.max(this.o.snapshotMinChars ?? 16 * 1024 * 1024, 2 * this.snapshotChars)
    const byAge = this.sinceSnapshot > this.snapshotChars && Date.now() - this.snapshotAt >= (this.o.snapshotMaxAgeMs ?? 24 * 3600_000)
    if (!bySize && !byAge) return
    try {
      const t0 = performance.now()
      const recs = snapshotRecords(store.partition, this.owner, store.appliedOffset(), store.entries())
      const before = this.sinceSnapshot
      const pos = await this.append(recs)
      await store.setChangelogPosition({ next: pos.next, owner: pos.owner })
      await this.o.log.truncate(this.o.changelogTopic, store.partition, pos.first)
      this.snapshotChars = this.sinceSnapshot - before
      this.sinceSnapshot = this.snapshotChars
      this.snapshotAt = Date.now()
      this.o.logger.info({ topic: this.o.sourceTopic, partition: store.partition, applied: store.appliedOffset(), chars: this.snapshotChars, records: recs.length, truncatedBefore: pos.first, ms: Math.round(performance.now() - t0) }, 'state snapshot written; changelog truncated before it')
    } catch (err) {
      this.o.logger.warn({ err, topic: this.o.sourceTopic, partition: store.partition }, 'state snapshot failed; retried after the next batch')
    }
  }
}
