/**
 * `npm run bench`: every benchmark in one run, one after another (they would skew each other in
 * parallel on a small machine). Prints each section's figures as JSON and writes them all to
 * bench/results/latest.json. Pick sections with `npm run bench -- edge processor`.
 *
 * Sections: log (embedded vs Kafka when KAFKA_BROKERS is set), processor, floor, impression, delivery, impressionIndex, recordFormat, steps, edge, ratelimit, read, e2e, sdk, billing, sustained, scale (Kafka).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { runLogBench } from './log-bench.js'
import { runProcessorBench } from './processor-bench.js'
import { runProcessorFloorBench } from './processor-floor-bench.js'
import { runImpressionStateBench } from './impression-state-bench.js'
import { runDeliveryIndexBench } from './delivery-index-bench.js'
import { runImpressionIndexBench } from './impression-index-bench.js'
import { runRecordFormatBench } from './record-format-bench.js'
import { runProcessorStepsBench } from './processor-steps-bench.js'
import { runEdgeBench } from './edge-bench.js'
import { runRateLimitBench } from './rate-limit-bench.js'
import { runReadBench } from './read-bench.js'
import { runE2eBench } from './e2e-bench.js'
import { runScaleBench } from './scale-bench.js'
import { runSdkBench } from './sdk-bench.js'
import { runBillingBench } from './billing-bench.js'
import { runSustainedBench } from './sustained-bench.js'

const sections: Record<string, () => Promise<unknown>> = {
  log: () => runLogBench(),
  processor: () => runProcessorBench(),
  // the design's floor per event: parse, two LMDB puts, RowBinary, events_raw insert, its merge, the lake, each alone
  floor: () => runProcessorFloorBench(),
  // the committed impression state: the processor's codec against the msgpack record it replaced
  impression: () => runImpressionStateBench(),
  // the delivery dedupe index alone: lookup, add and commit per key, beside LMDB's put alone
  delivery: () => runDeliveryIndexBench(),
  // impression states with random ids: the hour-bucketed index against the scope-keyed layout it replaced
  impressionIndex: () => runImpressionIndexBench(),
  // decoding a log record: the edge's JSON against msgpack, self-describing and with shared record structures
  recordFormat: () => runRecordFormatBench(),
  // the pipeline cut after each step, one batch, fastest of many passes (STEPS_BENCH_STATE: live state first)
  steps: () => runProcessorStepsBench(),
  edge: () => runEdgeBench(),
  ratelimit: () => runRateLimitBench(),
  read: () => runReadBench(),
  e2e: () => runE2eBench(),
  // the JS SDK: bundle size, bytes per event, events/s to a null server and to the real edge
  sdk: () => runSdkBench(),
  // billing job and a reprocess over one day of raw events (BENCH_BILLING_EVENTS, default 10M)
  billing: () => runBillingBench(),
  // the whole system at 80 % of its capacity for SUSTAINED_SECONDS (120; 3600 for an hour), plot in bench/results/
  sustained: () => runSustainedBench(),
  // processor throughput with one and two consumers on one Kafka broker (needs KAFKA_BROKERS)
  scale: async () => {
    const brokers = process.env.KAFKA_BROKERS?.split(',').filter(Boolean)
    if (!brokers?.length) return { skipped: 'set KAFKA_BROKERS (bash scripts/kafka/start.sh prints it)' }
    return runScaleBench({ brokers })
  },
}

const wanted = process.argv.slice(2).filter((a) => a in sections)
const chosen = wanted.length > 0 ? wanted : Object.keys(sections)
const results: Record<string, unknown> = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  at: new Date().toISOString(),
}
for (const name of chosen) {
  const t0 = performance.now()
  console.log(`\n=== bench: ${name}`)
  try {
    results[name] = await sections[name]!()
  } catch (err) {
    results[name] = { error: (err as Error).message }
  }
  console.log(JSON.stringify(results[name], null, 2))
  console.log(`(${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s)`)
}
const dir = join(import.meta.dirname, 'results')
mkdirSync(dir, { recursive: true })
writeFileSync(join(dir, 'latest.json'), JSON.stringify(results, null, 2))
console.log(`\nwritten to bench/results/latest.json`)
process.exit(0)
