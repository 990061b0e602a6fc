import { createHash } from 'node:crypto'
import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')

/** Tenants the workerd tests run against (the same JSON shape core serves at /v1/internal/edge-config). */
export const TEST_EDGE_CONFIG = {
  version: 1,
  campaignIds: ['cmp_1', 'cmp_demo_cpm', 'cmp_demo_cpc', 'cmp_other_only'],
  // Booked with pub_other alone: pub_test's events for it are not booked.
  campaignPublishers: { cmp_other_only: ['pub_other'] },
  publishers: [
    {
      id: 'pub_test', apiKeyHashes: [sha256('pk_test')], publicKeyHashes: [sha256('pkpub_test')],
      // r1, r0: server-scope request keys; a1: an app-scope one (its secret ships inside apps).
      signingKeys: { k1: 'secret-one', k0: 'secret-old' }, requestSigningKeys: { r1: 'rsecret-one', r0: 'rsecret-old' }, appRequestSigningKeys: { a1: 'asecret-one' },
      rateLimit: { perSecond: 100_000, burst: 200_000 }, active: true,
    },
    {
      id: 'pub_other', apiKeyHashes: [sha256('pk_other')], publicKeyHashes: [], signingKeys: { k2: 'secret-two' }, requestSigningKeys: { r2: 'rsecret-two' },
      rateLimit: { perSecond: 100_000, burst: 200_000 }, active: true,
    },
    { id: 'pub_noisy', apiKeyHashes: [sha256('pk_noisy')], signingKeys: {}, rateLimit: { perSecond: 0.5, burst: 4 }, active: true },
    { id: 'pub_model', apiKeyHashes: [sha256('pk_model')], signingKeys: {}, rateLimit: { perSecond: 100_000, burst: 200_000 }, active: true },
    { id: 'pub_gone', apiKeyHashes: [sha256('pk_gone')], signingKeys: {}, rateLimit: { perSecond: 10, burst: 10 }, active: false },
    // Rate-limit tests: one publisher per test, since limiter state lives as long as the runtime.
    // 0.01 events/s refills less than one event in a test's lifetime, so counts are exact.
    { id: 'pub_limited', apiKeyHashes: [sha256('pk_limited')], signingKeys: {}, rateLimit: { perSecond: 5, burst: 10 }, active: true },
    { id: 'pub_exact', apiKeyHashes: [sha256('pk_exact')], signingKeys: {}, rateLimit: { perSecond: 0.01, burst: 10 }, active: true },
    { id: 'pub_shared', apiKeyHashes: [sha256('pk_shared')], signingKeys: {}, rateLimit: { perSecond: 0.01, burst: 10 }, active: true },
    { id: 'pub_iso_a', apiKeyHashes: [sha256('pk_iso_a')], signingKeys: {}, rateLimit: { perSecond: 0.01, burst: 10 }, active: true },
    { id: 'pub_iso_b', apiKeyHashes: [sha256('pk_iso_b')], signingKeys: {}, rateLimit: { perSecond: 0.01, burst: 10 }, active: true },
    { id: 'pub_beacon', apiKeyHashes: [sha256('pk_beacon')], publicKeyHashes: [sha256('pkpub_beacon')], signingKeys: {}, rateLimit: { perSecond: 5, burst: 10 }, active: true },
    { id: 'pub_tokens', apiKeyHashes: [sha256('pk_tokens')], signingKeys: { kt: 'secret-tokens' }, rateLimit: { perSecond: 0.01, burst: 2 }, active: true },
    // Client-share tests: a public budget larger than one client's share.
    { id: 'pub_share', apiKeyHashes: [sha256('pk_share')], publicKeyHashes: [sha256('pkpub_share')], signingKeys: { ks: 'secret-share' }, requestSigningKeys: { rs: 'rsecret-share' }, appRequestSigningKeys: { as: 'asecret-share' }, rateLimit: { perSecond: 0.01, burst: 6000 }, active: true },
    { id: 'pub_flood', apiKeyHashes: [sha256('pk_flood')], publicKeyHashes: [sha256('pkpub_flood')], signingKeys: { kf: 'secret-flood' }, rateLimit: { perSecond: 0.01, burst: 10 }, active: true },
  ],
}

const workerd = cloudflareTest(({ inject }) => ({
  main: './src/index.ts',
  wrangler: { configPath: '../wrangler.toml' },
  miniflare: {
    // A client address's share as production sets it (wrangler.toml [env.production]).
    ratelimits: { CLIENT_LIMIT: { simple: { limit: 100, period: 10 } } },
    bindings: {
      REST_PROXY_URL: inject('proxyUrl'),
      CORE_URL: inject('proxyUrl'),
      EDGE_SYNC_KEY: 'edge_sync_test',
      // The fake proxy answers 401 to anything but these (test/fake-proxy.ts).
      REST_PROXY_USER: 'edge_proxy_test',
      REST_PROXY_PASSWORD: 'proxy-secret-test',
      EDGE_CONFIG_JSON: JSON.stringify(TEST_EDGE_CONFIG),
      PROXY_TIMEOUT_MS: '300',
      FORWARD_ATTEMPTS: '2',
      DEDUPE_TIMEOUT_MS: '2000',
      // Alarms are driven by the tests (runDurableObjectAlarm), not by the clock.
      SPOOL_FIRST_RETRY_MS: '600000',
      BLOOM_CAPACITY: '20000',
      IP_HASH_SECRET: 'ip-secret-test',
      // One edge-stats call per request, as most tests count them; stats.test.ts sums them on purpose.
      STATS_FLUSH_MS: '0',
    },
  },
}))

export default defineConfig({
  test: {
    projects: [
      // Pure modules (Bloom filter, privacy, rate limit) in plain Node; the browser tag in real
      // Chromium against the edge under `wrangler dev`.
      { test: { name: 'edge-node', include: ['src/**/*.node.test.ts', 'src/**/*.browser.test.ts'], testTimeout: 30_000, hookTimeout: 90_000 } },
      {
        plugins: [workerd],
        test: {
          name: 'edge-workerd',
          globalSetup: ['./test/global-setup.ts'],
          include: ['src/**/*.test.ts'],
          exclude: ['src/**/*.node.test.ts', 'src/**/*.browser.test.ts'],
          // One fake proxy is shared: files run one after another so their proxy modes do not interleave.
          fileParallelism: false,
          testTimeout: 20_000,
        },
      },
    ],
  },
})
