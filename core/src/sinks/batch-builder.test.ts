import { describe, expect, it } from 'vitest'
import { decoded } from '../testing/records.js'
import type { PipelineOutcome } from '../pipeline/pipeline.js'
import type { SinkEvent } from '../pipeline/types.js'
import { BatchBuilder } from './batch-builder.js'
import { eventsRowBinary } from './clickhouse-sink.js'
import { RowBinaryWriter } from './row-binary-writer.js'

const outcomes = (): Array<PipelineOutcome<SinkEvent>> => [
  { kind: 'ok', value: { ...decoded({ type: 'impression', n: 1, ua: 'Mozilla\\x ü', geo: 'DE' }, 0), ivt: { score: 0.2, reasons: ["it's", 'b\\c'], modelVersion: 'm1', quarantined: false } }, lastStep: 'sinkStep' },
  { kind: 'unbilled', reason: 'duplicate_delivery', value: decoded({ type: 'impression', n: 1 }, 1), lastStep: 'dedupeStep' },
  { kind: 'ok', value: { ...decoded({ type: 'click', n: 2, impressionId: 'imp_1' }, 2), join: { status: 'joined', impressionTs: 0, correction: true } }, lastStep: 'sinkStep' },
]

describe('BatchBuilder', () => {
  it('writes events_raw rows as RowBinary as it builds them, the same bytes as from row objects, and keeps no row objects unless asked', () => {
    const now = Date.UTC(2026, 10, 23, 10, 0, 0)
    const withRows = new BatchBuilder('ad-events', 0, 0, 9, now, true)
    const without = new BatchBuilder('ad-events', 0, 0, 9, now, false)
    for (const o of outcomes()) withRows.add(o)
    for (const o of outcomes()) without.add(o)
    const a = withRows.build()
    const b = without.build()
    expect(a.events).toHaveLength(4) // the correction is a -1 and a +1 row
    expect(b.events).toHaveLength(0)
    const fromRows = eventsRowBinary(a.events)
    expect(fromRows.bytes.length).toBeGreaterThan(4 * 100)
    expect(b.eventsRowBinary!.bytes.equals(fromRows.bytes)).toBe(true)
    expect(a.eventsRowBinary!.bytes.equals(fromRows.bytes)).toBe(true)
    expect(b.eventsRowBinary!.refusal).toBeUndefined()
    expect(b.rollup).toEqual(a.rollup)
    // The rows' time span, which the lake uses to write a one-hour batch without PARTITION BY.
    const ts = a.events.map((r) => r.ts)
    expect(b.eventsRowBinary!.tsRange).toEqual([Math.min(...ts), Math.max(...ts)])
    expect(fromRows.tsRange).toEqual(b.eventsRowBinary!.tsRange)
  })

  it('writes into a writer it is given, emptied first: the next batch of a worker reuses its buffer and carries nothing over', () => {
    const now = Date.UTC(2026, 10, 23, 10, 0, 0)
    // What an earlier batch left in the writer: a body grown past its first buffer, marked refused.
    const writer = new RowBinaryWriter(64)
    writer.str('x'.repeat(5000)).dt64(-1)
    expect(writer.refusal).toMatch(/^Code: 41\./)
    const grown = writer.bytes().buffer
    const reused = addAll(new BatchBuilder('ad-events', 0, 10, 19, now, false, writer)).build()
    const fresh = addAll(new BatchBuilder('ad-events', 0, 10, 19, now, false)).build()
    expect(reused.eventsRowBinary!.bytes.equals(fresh.eventsRowBinary!.bytes)).toBe(true)
    expect(reused.eventsRowBinary!.refusal).toBeUndefined()
    expect(reused.eventsRowBinary!.bytes.buffer).toBe(grown)
  })
})

function addAll(b: BatchBuilder): BatchBuilder {
  for (const o of outcomes()) b.add(o)
  return b
}
