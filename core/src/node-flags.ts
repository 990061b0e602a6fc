/**
 * V8 flags the processor runs with (scripts/start.ts, core/Dockerfile, the e2e system, the processor
 * bench's README command).
 *
 * `--max-semi-space-size=512` (MiB): the young generation V8 collects with its scavenger. A batch
 * keeps its records, its state overlay and its delivery keys alive until it commits (20k records),
 * so each scavenge copies that live set whatever the young generation's size: the larger it is, the
 * fewer scavenges per batch. Measured with bench/processor-bench.ts (160k events):
 * - default (16 MiB) against 128 MiB, every sink, two runs each: 38.5–41.9 against 35.2–37.0 µs of
 *   CPU per event (GC on the main thread 2.9–3.3 → 1.6–1.8 µs; V8's helper threads 1.22–1.28 →
 *   0.96 s);
 * - 128 against 256 MiB, against a ClickHouse server, four alternating pairs: 16.4–17.7 against
 *   15.8–17.1 µs (GC 1.3–1.5 → 0.9–1.0 µs; helper threads 0.43–0.47 → 0.34–0.35 s); with every
 *   sink, two pairs each: 18.6–19.9 against 18.5–19.3 µs against a server, 29.8–31.2 against
 *   29.3–29.8 embedded (GC 1.4 → 0.9–1.0 µs);
 * - 512 MiB was no better than 256 then (17.2–17.7 µs in two pairs against 16.3–17.0): each batch
 *   allocated a new 9.6 MB buffer for its events_raw rows, and that memory outside the heap made V8
 *   scavenge every 64 MB of it ("external memory pressure", `--trace-gc`), whatever the young
 *   generation's size. Since each partition's worker reuses one buffer (event-worker.ts), the
 *   young generation's size decides again. Against a server, every sink, 160k events
 *   (`--trace-gc` over the measured run): 256 MiB, 6 collections (four scavenges, two mark-compacts),
 *   243–291 ms of pauses, helper threads 0.41–0.53 s; 512 MiB, 3 (two scavenges, one mark-compact),
 *   127–280 ms, 0.26–0.44 s; 1024 MiB, 1–2 scavenges, 83–177 ms, 0.15–0.31 s, for twice the
 *   memory again. 512 is kept: most of the gain, a heap of about 1.1 GiB committed (2.1 at 1024).
 * The cost is memory: up to 3 × 512 MiB of young generation, committed as the allocation rate asks
 * for it.
 */
export const CORE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=512']
