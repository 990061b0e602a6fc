/**
 * V8 flags the processor runs with (scripts/start.ts, core/Dockerfile, the e2e system, the processor
 * bench's README command).
 *
 * `--max-semi-space-size=128` (MiB): the young generation V8 collects with its scavenger. A batch
 * keeps its records, its state overlay and its delivery keys alive until it commits (20k records),
 * so with the default 16 MiB semi-space each scavenge copies a large share of what it finds and
 * promotes it into the old generation, which then needs full collections. Measured with
 * bench/processor-bench.ts (every sink, 160k events, two runs each): 38.5–41.9 µs of CPU per event
 * at the default, 35.2–37.0 at 128 MiB (GC on the main thread 2.9–3.3 → 1.6–1.8 µs; V8's helper
 * threads 1.22–1.28 → 0.96 s). The cost is memory: up to 3 × 128 MiB of young generation, reserved
 * as the allocation rate asks for it.
 */
export const CORE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=128']
