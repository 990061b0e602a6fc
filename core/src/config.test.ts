import { describe, expect, it } from 'vitest'
import { exportStoreFromConfig } from './billing/exports-store.js'
import { ConfigError, DEV_DEFAULTS, loadConfig } from './config.js'

describe('loadConfig', () => {
  it('defaults to the embedded development setup', () => {
    const c = loadConfig({})
    expect(c.CORE_PORT).toBe(8788)
    expect(c.KAFKA_BROKERS).toBeUndefined()
    expect(c.CLICKHOUSE_URL).toBeUndefined()
    expect(c.DEMO_PUBLISHER_KEY).toBe(DEV_DEFAULTS.DEMO_PUBLISHER_KEY)
  })

  it('takes REGION and HOME_REGION together or not at all', () => {
    expect(loadConfig({ REGION: 'us', HOME_REGION: 'eu' })).toMatchObject({ REGION: 'us', HOME_REGION: 'eu' })
    expect(loadConfig({}).REGION).toBeUndefined()
    expect(() => loadConfig({ REGION: 'us' })).toThrow(/REGION and HOME_REGION/)
    expect(() => loadConfig({ HOME_REGION: 'eu' })).toThrow(/REGION and HOME_REGION/)
    expect(() => loadConfig({ REGION: 'US East', HOME_REGION: 'eu' })).toThrow(ConfigError)
  })

  it('splits the broker list', () => {
    expect(loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9093' }).KAFKA_BROKERS).toEqual(['127.0.0.1:9092', '127.0.0.1:9093'])
  })

  it('refuses development defaults outside development, naming them', () => {
    expect(() => loadConfig({ ADC_ENV: 'test' })).toThrow(ConfigError)
    expect(() => loadConfig({ ADC_ENV: 'test' })).toThrow(/DEMO_ADMIN_KEY/)
    expect(() => loadConfig({ ADC_ENV: 'production' })).toThrow(/EDGE_SYNC_KEY, REST_PROXY_USER, REST_PROXY_PASSWORD/)
    const secrets = { EDGE_SYNC_KEY: 'e'.repeat(20), REST_PROXY_USER: 'edge', REST_PROXY_PASSWORD: 'r'.repeat(20) }
    expect(() => loadConfig({ ADC_ENV: 'production', ...secrets, REST_PROXY_PASSWORD: DEV_DEFAULTS.REST_PROXY_PASSWORD })).toThrow(/REST_PROXY_PASSWORD/)
    const ok = loadConfig({
      ADC_ENV: 'test', DEMO_PUBLISHER_KEY: 'p'.repeat(20), DEMO_ADVERTISER_KEY: 'a'.repeat(20),
      DEMO_SIGNING_SECRET: 's'.repeat(20), DEMO_ADMIN_KEY: 'x'.repeat(20), ...secrets,
    })
    expect(ok.ADC_ENV).toBe('test')
    expect(ok.DEMO_PUBLIC_KEY).toBeUndefined()
    const base = { ADC_ENV: 'test', DEMO_PUBLISHER_KEY: 'p'.repeat(20), DEMO_ADVERTISER_KEY: 'a'.repeat(20), DEMO_SIGNING_SECRET: 's'.repeat(20), DEMO_ADMIN_KEY: 'x'.repeat(20), ...secrets }
    expect(() => loadConfig({ ...base, DEMO_PUBLIC_KEY: 'pkpub_demo_publisher_dev' })).toThrow(/DEMO_PUBLIC_KEY/)
    expect(() => loadConfig({ ...base, DEMO_REQUEST_SIGNING_SECRET: 'demo-request-secret-dev' })).toThrow(/DEMO_REQUEST_SIGNING_SECRET/)
  })

  it('production seeds no demo tenant, so it does not ask for DEMO_* keys', () => {
    const c = loadConfig({ ADC_ENV: 'production', EDGE_SYNC_KEY: 'e'.repeat(20), REST_PROXY_USER: 'edge', REST_PROXY_PASSWORD: 'r'.repeat(20) })
    expect(c.ADC_ENV).toBe('production')
  })

  it('gives the internal server its own port and loopback host', () => {
    const c = loadConfig({})
    expect(c.INTERNAL_PORT).toBe(8789)
    expect(c.INTERNAL_HOST).toBe('127.0.0.1')
    expect(c.REST_PROXY_USER).toBe(DEV_DEFAULTS.REST_PROXY_USER)
    expect(() => loadConfig({ CORE_PORT: '9000', INTERNAL_PORT: '9000' })).toThrow(/INTERNAL_PORT and CORE_PORT/)
  })

  it('does not ask a processor without the gateway for REST proxy credentials', () => {
    const c = loadConfig({ ADC_ENV: 'production', EDGE_SYNC_KEY: 'e'.repeat(20), GATEWAY_ENABLED: 'false' })
    expect(c.GATEWAY_ENABLED).toBe(false)
  })

  it('puts export files in a local directory unless EXPORTS_S3_BUCKET is set, and then needs an endpoint and credentials, by default the lake\'s', () => {
    const c = loadConfig({})
    expect(c.EXPORTS_S3_BUCKET).toBeUndefined()
    expect(c.EXPORTS_S3_PREFIX).toBe('exports/')
    expect(c.EXPORTS_URL_TTL_SECONDS).toBe(900)
    expect(exportStoreFromConfig(c, '/data').kind).toBe('local')
    expect(() => loadConfig({ EXPORTS_S3_BUCKET: 'exports' })).toThrow(/EXPORTS_S3_BUCKET needs an endpoint and credentials/)
    const lake = { ICEBERG_S3_ENDPOINT: 'http://minio:9000', ICEBERG_S3_ACCESS_KEY_ID: 'adc', ICEBERG_S3_SECRET_ACCESS_KEY: 'secret' }
    const s3 = loadConfig({ ...lake, EXPORTS_S3_BUCKET: 'warehouse', EXPORTS_S3_PUBLIC_ENDPOINT: 'http://127.0.0.1:9000' })
    const store = exportStoreFromConfig(s3, '/data')
    expect(store.kind).toBe('s3')
    // Presigned for the public endpoint, under the prefix.
    expect(store.signedUrl('2026-11-20/v1/a.csv', 60, Date.parse('2026-12-01T00:00:00Z'))).toMatch(/^http:\/\/127\.0\.0\.1:9000\/warehouse\/exports\/2026-11-20\/v1\/a\.csv\?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=adc%2F20261201%2Fus-east-1%2Fs3/)
    expect(loadConfig({ EXPORTS_S3_BUCKET: 'b-1', EXPORTS_S3_ENDPOINT: 'http://s3:9000', EXPORTS_S3_ACCESS_KEY_ID: 'k', EXPORTS_S3_SECRET_ACCESS_KEY: 's' }).EXPORTS_S3_BUCKET).toBe('b-1')
    expect(() => loadConfig({ EXPORTS_S3_PREFIX: 'exports' })).toThrow(/EXPORTS_S3_PREFIX/)
    expect(() => loadConfig({ EXPORTS_S3_PREFIX: '../x/' })).toThrow(/EXPORTS_S3_PREFIX/)
    expect(() => loadConfig({ EXPORTS_URL_TTL_SECONDS: '604801' })).toThrow(/EXPORTS_URL_TTL_SECONDS/)
    expect(() => loadConfig({ EXPORTS_S3_BUCKET: 'Bad_Bucket' })).toThrow(/EXPORTS_S3_BUCKET/)
  })

  it('explains invalid values', () => {
    expect(() => loadConfig({ CORE_PORT: 'eighty' })).toThrow(/CORE_PORT/)
    expect(() => loadConfig({ CLICKHOUSE_URL: 'not a url' })).toThrow(/CLICKHOUSE_URL/)
  })
})
