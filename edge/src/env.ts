import type { DedupeShard } from './dedupe/dedupe-shard.js'
import type { RateLimiter } from './rate-limit/rate-limiter.js'
import type { Spool } from './ingest/spool.js'

/** Bindings and variables of the edge Worker (wrangler.toml). Numbers arrive as strings. */
export interface Env {
  DEDUPE_SHARD: DurableObjectNamespace<DedupeShard>
  SPOOL: DurableObjectNamespace<Spool>
  /** One per publisher: its global event budget. */
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>
  /**
   * A client address's share of a publisher's public budgets (rate-limit/client-limit.ts): the
   * Workers Rate Limiting binding. Absent, the publisher's budget alone applies.
   */
  CLIENT_LIMIT?: RateLimit
  REST_PROXY_URL: string
  /** HTTP Basic credentials for the REST proxy (core's gateway or Confluent's with BASIC auth); secrets. */
  REST_PROXY_USER: string
  REST_PROXY_PASSWORD: string
  CORE_URL: string
  EDGE_SYNC_KEY: string
  EDGE_CONFIG_JSON?: string
  EDGE_CONFIG_TTL_MS?: string
  DEDUPE_SHARDS?: string
  DEDUPE_TIMEOUT_MS?: string
  SPOOL_FIRST_RETRY_MS?: string
  PROXY_TIMEOUT_MS?: string
  FORWARD_ATTEMPTS?: string
  BLOOM_CAPACITY?: string
  BLOOM_FP_RATE?: string
  RATE_LIMIT_TIMEOUT_MS?: string
  STATS_FLUSH_MS?: string
  DEDUPE_CONFIRM_FLUSH_MS?: string
  /** "1" serves the benchmark's validate-only route (edge/src/routes/bench.ts); never in production. */
  BENCH_ROUTES?: string
  IP_HASH_SECRET: string
  /** `development` (default) allows the development secrets; any other value refuses them. */
  ADC_ENV?: string
}
