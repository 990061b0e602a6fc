import { describe, expect, it } from 'vitest'
import type { Env } from '../env.js'
import { SettingsError, settingsFrom } from './settings.js'

const base = { REST_PROXY_URL: 'http://127.0.0.1:1', CORE_URL: 'http://127.0.0.1:1', EDGE_SYNC_KEY: 'edge_sync_dev', IP_HASH_SECRET: 'ip-hash-secret-dev' }
const env = (over: Record<string, string | undefined> = {}) => ({ ...base, ...over }) as unknown as Env

describe('settingsFrom', () => {
  it('applies documented defaults and reads numbers from strings', () => {
    expect(settingsFrom(env({ DEDUPE_SHARDS: '16' }))).toMatchObject({ dedupeShards: 16, dedupeTimeoutMs: 250, forwardAttempts: 3, bloomFpRate: 0.01 })
  })

  it('refuses development secrets outside development', () => {
    expect(() => settingsFrom(env({ ADC_ENV: 'production' }))).toThrow(SettingsError)
    expect(() => settingsFrom(env({ ADC_ENV: 'production', EDGE_SYNC_KEY: 'a-real-key' }))).toThrow(/IP_HASH_SECRET/)
    expect(settingsFrom(env({ ADC_ENV: 'production', EDGE_SYNC_KEY: 'k', IP_HASH_SECRET: 's' })).edgeSyncKey).toBe('k')
  })

  it('refuses a missing proxy URL with a SettingsError naming it', () => {
    expect(() => settingsFrom(env({ REST_PROXY_URL: undefined }))).toThrow(/restProxyUrl/)
  })
})
