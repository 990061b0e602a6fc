import { describe, expect, it } from 'vitest'
import { ConfigError, DEV_DEFAULTS, loadConfig } from './config.js'

describe('loadConfig', () => {
  it('defaults to the embedded development setup', () => {
    const c = loadConfig({})
    expect(c.CORE_PORT).toBe(8788)
    expect(c.KAFKA_BROKERS).toBeUndefined()
    expect(c.CLICKHOUSE_URL).toBeUndefined()
    expect(c.DEMO_PUBLISHER_KEY).toBe(DEV_DEFAULTS.DEMO_PUBLISHER_KEY)
  })

  it('splits the broker list', () => {
    expect(loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9093' }).KAFKA_BROKERS).toEqual(['127.0.0.1:9092', '127.0.0.1:9093'])
  })

  it('refuses development defaults in production, naming them', () => {
    expect(() => loadConfig({ ADC_ENV: 'production' })).toThrow(ConfigError)
    expect(() => loadConfig({ ADC_ENV: 'production' })).toThrow(/DEMO_ADMIN_KEY/)
    const ok = loadConfig({
      ADC_ENV: 'production', DEMO_PUBLISHER_KEY: 'p'.repeat(20), DEMO_ADVERTISER_KEY: 'a'.repeat(20),
      DEMO_SIGNING_SECRET: 's'.repeat(20), DEMO_ADMIN_KEY: 'x'.repeat(20), EDGE_SYNC_KEY: 'e'.repeat(20),
    })
    expect(ok.ADC_ENV).toBe('production')
    expect(ok.DEMO_PUBLIC_KEY).toBeUndefined()
    const base = {
      ADC_ENV: 'production', DEMO_PUBLISHER_KEY: 'p'.repeat(20), DEMO_ADVERTISER_KEY: 'a'.repeat(20),
      DEMO_SIGNING_SECRET: 's'.repeat(20), DEMO_ADMIN_KEY: 'x'.repeat(20), EDGE_SYNC_KEY: 'e'.repeat(20),
    }
    expect(() => loadConfig({ ...base, DEMO_PUBLIC_KEY: 'pkpub_demo_publisher_dev' })).toThrow(/DEMO_PUBLIC_KEY/)
    expect(() => loadConfig({ ...base, DEMO_REQUEST_SIGNING_SECRET: 'demo-request-secret-dev' })).toThrow(/DEMO_REQUEST_SIGNING_SECRET/)
  })

  it('explains invalid values', () => {
    expect(() => loadConfig({ CORE_PORT: 'eighty' })).toThrow(/CORE_PORT/)
    expect(() => loadConfig({ CLICKHOUSE_URL: 'not a url' })).toThrow(/CLICKHOUSE_URL/)
  })
})
