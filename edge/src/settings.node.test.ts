import { describe, expect, it } from 'vitest'
import type { Env } from './env.js'
import { SettingsError, settingsFrom } from './settings.js'

const base = {
  REST_PROXY_URL: 'http://127.0.0.1:1', CORE_URL: 'http://127.0.0.1:1', EDGE_SYNC_KEY: 'edge_sync_dev', IP_HASH_SECRET: 'ip-hash-secret-dev',
  REST_PROXY_USER: 'adc_edge_dev', REST_PROXY_PASSWORD: 'rest-proxy-secret-dev',
}
const realSecrets = { EDGE_SYNC_KEY: 'k', IP_HASH_SECRET: 's', REST_PROXY_USER: 'edge', REST_PROXY_PASSWORD: 'p' }
const env = (over: Record<string, string | undefined> = {}) => ({ ...base, ...over }) as unknown as Env

describe('settingsFrom', () => {
  it('applies documented defaults and reads numbers from strings', () => {
    expect(settingsFrom(env({ DEDUPE_SHARDS: '16' }))).toMatchObject({ dedupeShards: 16, dedupeTimeoutMs: 250, forwardAttempts: 3, bloomFpRate: 0.01 })
  })

  it('refuses development secrets outside development', () => {
    expect(() => settingsFrom(env({ ADC_ENV: 'production' }))).toThrow(SettingsError)
    expect(() => settingsFrom(env({ ADC_ENV: 'production', EDGE_SYNC_KEY: 'a-real-key' }))).toThrow(/IP_HASH_SECRET/)
    expect(settingsFrom(env({ ADC_ENV: 'production', ...realSecrets })).edgeSyncKey).toBe('k')
  })

  it('refuses the development REST proxy credentials outside development, and reads real ones', () => {
    expect(() => settingsFrom(env({ ADC_ENV: 'production', ...realSecrets, REST_PROXY_PASSWORD: 'rest-proxy-secret-dev' }))).toThrow(/REST_PROXY_PASSWORD/)
    expect(() => settingsFrom(env({ ADC_ENV: 'production', ...realSecrets, REST_PROXY_USER: 'adc_edge_dev' }))).toThrow(/REST_PROXY_USER/)
    expect(settingsFrom(env({ ADC_ENV: 'production', ...realSecrets }))).toMatchObject({ restProxyUser: 'edge', restProxyPassword: 'p' })
  })

  it('refuses missing proxy credentials', () => {
    expect(() => settingsFrom(env({ REST_PROXY_PASSWORD: undefined }))).toThrow(/restProxyPassword/)
  })

  it('refuses a missing proxy URL with a SettingsError naming it', () => {
    expect(() => settingsFrom(env({ REST_PROXY_URL: undefined }))).toThrow(/restProxyUrl/)
  })
})
