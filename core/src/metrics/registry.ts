import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

export interface MetricsRegistryOptions {
  /** Node process metrics (CPU, memory, event loop lag). @default true */
  defaultMetrics?: boolean
}

/** The one Prometheus registry of a core process; every component registers into it. */
export function createMetricsRegistry({ defaultMetrics = true }: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry()
  if (defaultMetrics) collectDefaultMetrics({ register: registry })
  return registry
}

export interface ProcessorMetrics {
  /** Records not yet processed, per topic and partition (high watermark - next offset). */
  lag: Gauge<'topic' | 'partition'>
  /** Processed events by outcome (`billable`, `unbilled`, `bad_row`, `pending`) and reason code. */
  events: Counter<'topic' | 'outcome' | 'reason'>
  /** Time per sink write of one batch. */
  sinkLatency: Histogram<'sink'>
  /** Seconds between the edge receiving the newest event of the last written batch and its write. */
  freshness: Gauge<'topic'>
  /** Batches written, and failed attempts (retried). */
  batches: Counter<'topic' | 'result'>
  /** Rows per written batch. */
  batchRecords: Histogram<'topic'>
  /** Clicks waiting for their impression per partition: accepted, held in state, not yet written. */
  waitingClicks: Gauge<'partition'>
  /**
   * Catch-ups of the tenant view before an `unknown_campaign` verdict (processor/tenant-sync.ts), by
   * outcome: `caught_up`, `behind` (timed out: the batch is retried), `version_ahead` (an event whose
   * stamped config version the caught-up view lacks, kept unknown_campaign).
   */
  tenantSync: Counter<'outcome'>
  /** 1 while a partition's batch keeps failing (retried, nothing written), 0 once it is written. */
  stalled: Gauge<'topic' | 'partition'>
  /** 1 while this process owns the partition (after onAssign), 0 once revoked: which replica reads what. */
  assigned: Gauge<'topic' | 'partition'>
}

function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make()
}

/** The processor's metrics, created once per registry (a second processor reuses them). */
export function processorMetrics(registry: Registry): ProcessorMetrics {
  const registers = [registry]
  return {
    lag: getOrCreate(registry, 'adc_processor_lag_records', () => new Gauge({ name: 'adc_processor_lag_records', help: 'Log records not yet processed per partition', labelNames: ['topic', 'partition'] as const, registers })),
    events: getOrCreate(registry, 'adc_processor_events_total', () => new Counter({ name: 'adc_processor_events_total', help: 'Processed events by outcome and reason code', labelNames: ['topic', 'outcome', 'reason'] as const, registers })),
    sinkLatency: getOrCreate(registry, 'adc_processor_sink_latency_seconds', () => new Histogram({ name: 'adc_processor_sink_latency_seconds', help: 'Time to write one batch to a sink', labelNames: ['sink'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers })),
    freshness: getOrCreate(registry, 'adc_processor_freshness_seconds', () => new Gauge({ name: 'adc_processor_freshness_seconds', help: 'Age of the newest event in the last written batch at write time (edge receivedAt to sink ack)', labelNames: ['topic'] as const, registers })),
    batches: getOrCreate(registry, 'adc_processor_batches_total', () => new Counter({ name: 'adc_processor_batches_total', help: 'Batch write attempts by result', labelNames: ['topic', 'result'] as const, registers })),
    waitingClicks: getOrCreate(registry, 'adc_processor_join_waiting_clicks', () => new Gauge({ name: 'adc_processor_join_waiting_clicks', help: 'Clicks waiting for their impression (accepted, held in partition state, not yet written)', labelNames: ['partition'] as const, registers })),
    stalled: getOrCreate(registry, 'adc_partition_stalled', () => new Gauge({ name: 'adc_partition_stalled', help: 'Partitions whose last batch attempt failed (1) until one is written (0)', labelNames: ['topic', 'partition'] as const, registers })),
    assigned: getOrCreate(registry, 'adc_processor_partition_assigned', () => new Gauge({ name: 'adc_processor_partition_assigned', help: 'Partitions this process owns (1) or owned and gave up (0)', labelNames: ['topic', 'partition'] as const, registers })),
    tenantSync: getOrCreate(registry, 'adc_processor_tenant_sync_total', () => new Counter({ name: 'adc_processor_tenant_sync_total', help: 'Catch-ups of the tenant view before an unknown_campaign verdict (caught_up, behind: batch retried) and events stamped with a config version the caught-up view lacks (version_ahead)', labelNames: ['outcome'] as const, registers })),
    batchRecords: getOrCreate(registry, 'adc_processor_batch_records', () => new Histogram({ name: 'adc_processor_batch_records', help: 'Records per written batch', labelNames: ['topic'] as const, buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000], registers })),
  }
}
