import { describe, expect, it } from 'vitest'
import { openTenantStore, requestScopeOf, type Publisher } from './tenant-store.js'
import { tenantStoreSuite } from '../testing/tenant-store.contract.js'

tenantStoreSuite(async (dir) => openTenantStore({ dir }))

describe('request key scopes of publishers stored before scopes', () => {
  it('reads a request key without a stored scope as an app key (least trust), a token key as having none', () => {
    const legacy = {
      id: 'pub_old', name: 'Old', apiKeyHashes: [], signingKeys: { t: 's', r: 's2' }, signingKeyPurposes: { t: 'token', r: 'request' },
      rateLimit: { perSecond: 1, burst: 1 }, active: true, createdAt: 0,
    } satisfies Publisher
    expect(requestScopeOf(legacy, 'r')).toBe('app')
    expect(requestScopeOf(legacy, 't')).toBeUndefined()
    expect(requestScopeOf({ ...legacy, signingKeyScopes: { r: 'server' } }, 'r')).toBe('server')
  })
})
