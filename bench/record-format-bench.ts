/**
 * What the log's record format costs to decode, on the processor bench's events: the JSON the edge
 * writes (JSON.parse, the processor bench's baseline) against msgpack, self-describing (each record
 * carries its keys, as JSON does) and with shared record structures (the field lists kept once,
 * outside the records, as Avro with a schema registry or a versioned layout would). Each variant
 * decodes the same batch of records many times; the fastest pass counts (this machine's CPU time
 * swings between runs, its floor does not). Reports CPU µs per record and bytes per record.
 *
 *   node --max-semi-space-size=512 --import tsx bench/record-format-bench.ts
 *
 * Env: RECORD_FORMAT_BENCH_RECORDS (20000), RECORD_FORMAT_BENCH_PASSES (30).
 */
import { pathToFileURL } from 'node:url'
import { Packr } from 'msgpackr'
import { trafficMix } from '../core/src/testing/events.js'

export interface RecordFormatFigures {
  records: number
  passes: number
  /** Fastest pass, CPU µs per record. */
  decodeMicros: { json: number; msgpack: number; msgpackSharedStructures: number }
  bytesPerRecord: { json: number; msgpack: number; msgpackSharedStructures: number }
}

export async function runRecordFormatBench(options: { records?: number; passes?: number } = {}): Promise<RecordFormatFigures> {
  const records = options.records ?? Number(process.env.RECORD_FORMAT_BENCH_RECORDS ?? 20_000)
  const passes = options.passes ?? Number(process.env.RECORD_FORMAT_BENCH_PASSES ?? 30)
  const texts = trafficMix(records, { randomImpressionIds: true }).records.slice(0, records).map((r) => String(r.value))
  const objects = texts.map((t) => JSON.parse(t) as unknown)
  const selfDescribing = new Packr({ useRecords: true })
  const shared = new Packr({ structures: [] })
  const variants = {
    json: { bytes: texts.map((t) => Buffer.byteLength(t)), decode: (i: number) => JSON.parse(texts[i]!) as unknown },
    msgpack: (() => {
      const b = objects.map((o) => selfDescribing.pack(o))
      const reader = new Packr({ useRecords: true })
      return { bytes: b.map((x) => x.length), decode: (i: number) => reader.unpack(b[i]!) as unknown }
    })(),
    msgpackSharedStructures: (() => {
      const b = objects.map((o) => Buffer.from(shared.pack(o)))
      return { bytes: b.map((x) => x.length), decode: (i: number) => shared.unpack(b[i]!) as unknown }
    })(),
  }
  // The decoded records are kept alive for the pass, as a processor's batch keeps them.
  for (const [name, v] of Object.entries(variants)) {
    const back = v.decode(records - 1)
    if (JSON.stringify(back) !== JSON.stringify(objects[records - 1])) throw new Error(`${name} does not read back what was written`)
  }
  const best = { json: Infinity, msgpack: Infinity, msgpackSharedStructures: Infinity }
  for (let pass = 0; pass < passes; pass++) {
    for (const name of Object.keys(variants) as (keyof typeof variants)[]) {
      const keep: unknown[] = new Array(records)
      const cpu0 = process.cpuUsage()
      for (let i = 0; i < records; i++) keep[i] = variants[name].decode(i)
      const cpu = process.cpuUsage(cpu0)
      best[name] = Math.min(best[name], (cpu.user + cpu.system) / records)
    }
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  const round = (n: number): number => Math.round(n * 1000) / 1000
  return {
    records,
    passes,
    decodeMicros: { json: round(best.json), msgpack: round(best.msgpack), msgpackSharedStructures: round(best.msgpackSharedStructures) },
    bytesPerRecord: { json: Math.round(mean(variants.json.bytes)), msgpack: Math.round(mean(variants.msgpack.bytes)), msgpackSharedStructures: Math.round(mean(variants.msgpackSharedStructures.bytes)) },
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const f = await runRecordFormatBench()
  console.log(JSON.stringify(f, null, 2))
  console.log(`decode per record: JSON ${f.decodeMicros.json} µs (${f.bytesPerRecord.json} B), msgpack ${f.decodeMicros.msgpack} µs (${f.bytesPerRecord.msgpack} B), msgpack with shared structures ${f.decodeMicros.msgpackSharedStructures} µs (${f.bytesPerRecord.msgpackSharedStructures} B)`)
}
