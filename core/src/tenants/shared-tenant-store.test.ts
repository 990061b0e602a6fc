import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { basename } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createEmbeddedLog, type EmbeddedLogHandle } from '../log/embedded-log.js'
import { TENANTS_TOPIC } from '@adc/schemas'
import { openSharedTenantStore } from './shared-tenant-store.js'
import { DEMO_DEFAULTS, TenantConflictError, hashApiKey, openTenantStore, seedDemoTenant, type TenantStore } from './tenant-store.js'
import { tenantStoreSuite } from '../testing/tenant-store.contract.js'
import { heldLog } from '../testing/held-log.js'
import { tenantReplicas } from '../testing/tenant-replicas.js'

const { logger, closers, tmp, sharedLog, replica, closeAll } = tenantReplicas('adc-shared-tenants-')

async function eventually(check: () => void, ms = 5_000): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    try {
      check()
      return
    } catch (err) {
      if (Date.now() > until) throw err
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

afterEach(closeAll)

describe('shared tenant store (tenant changes on the log, LMDB as each replica view)', () => {
  it('shows an admin write on replica A to replica B, with the same config version on both', async () => {
    const log = await sharedLog()
    const a = await replica(log)
    const b = await replica(log)
    const { apiKey } = await a.createAdvertiser({ id: 'adv_a', name: 'A' })
    // Resolved means applied locally: A reads its own write at once.
    expect(a.getAdvertiser('adv_a')?.name).toBe('A')
    const pub = await a.createPublisher({ id: 'pub_a', name: 'P' })
    await eventually(() => expect(b.principalForKey(pub.apiKey)).toEqual({ kind: 'publisher', id: 'pub_a' }))
    expect(b.principalForKey(apiKey)).toEqual({ kind: 'advertiser', id: 'adv_a' })
    expect(b.getAdvertiser('adv_a')).toEqual(a.getAdvertiser('adv_a'))
    expect(b.edgeConfig()).toEqual(a.edgeConfig())
    await b.updatePublisher('pub_a', { active: false })
    await eventually(() => expect(a.getPublisher('pub_a')?.active).toBe(false))
    expect(a.configVersion()).toBe(b.configVersion())
  })

  it('lets the first record in the topic win when two replicas create the same id; the other write is a conflict everywhere', async () => {
    const log = await sharedLog()
    const a = await replica(log)
    const b = await replica(log)
    const results = await Promise.allSettled([
      a.createAdvertiser({ id: 'adv_same', name: 'from A' }),
      b.createAdvertiser({ id: 'adv_same', name: 'from B' }),
    ])
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(won).toHaveLength(1)
    expect(lost).toHaveLength(1)
    expect(lost[0]!.reason).toBeInstanceOf(TenantConflictError)
    const winner = (won[0] as PromiseFulfilledResult<{ advertiser: { name: string } }>).value.advertiser.name
    const first = JSON.parse((await log.readRange(TENANTS_TOPIC, 0, 0)).find((r) => r.value.includes('adv_same'))!.value) as { name: string }
    expect(winner).toBe(first.name)
    await eventually(() => expect(b.getAdvertiser('adv_same')?.name).toBe(winner))
    expect(a.getAdvertiser('adv_same')?.name).toBe(winner)
  })

  it('catches a replica up on what another wrote before the call, and says so; false while its consumer is held back', async () => {
    const log = await sharedLog()
    const a = await replica(log)
    const held = heldLog(log)
    const b = await replica(held.log)
    await a.createAdvertiser({ id: 'adv_c', name: 'C' })
    await eventually(() => expect(b.getAdvertiser('adv_c')).toBeDefined())
    expect(await b.catchUp(1_000)).toBe(true)
    held.hold()
    closers.unshift(async () => held.release())
    await a.createCampaign({ id: 'cmp_c', advertiserId: 'adv_c', pricing: { model: 'cpm', priceMicros: 1 } })
    // Held back, B cannot apply the booking: the bounded catch-up answers false, and B has not got it.
    expect(await b.catchUp(200)).toBe(false)
    expect(b.getCampaign('cmp_c')).toBeUndefined()
    expect(b.configVersion()).toBeLessThan(a.configVersion())
    const caught = b.catchUp(5_000)
    held.release()
    expect(await caught).toBe(true)
    // Resolved means applied: what A wrote before the call is served by B.
    expect(b.getCampaign('cmp_c')).toEqual(a.getCampaign('cmp_c'))
    expect(b.configVersion()).toBe(a.configVersion())
  })

  it('skips a record that is not a tenant command on every replica, and goes on applying', async () => {
    const log = await sharedLog()
    const a = await replica(log)
    await log.append(TENANTS_TOPIC, [{ key: 'garbage', value: '{not json', partition: 0 }])
    await a.createAdvertiser({ id: 'adv_after', name: 'After' })
    const b = await replica(log)
    expect(b.getAdvertiser('adv_after')?.name).toBe('After')
    expect(b.configVersion()).toBe(a.configVersion())
  })

  it('rebuilds a new replica view from the topic, and a restarted one catches up on what it missed', async () => {
    const log = await sharedLog()
    const a = await replica(log)
    await seedDemoTenant(a, DEMO_DEFAULTS)
    const bDir = tmp()
    const b = await replica(log, bDir)
    // Ready means caught up with the topic as it was at start.
    expect(b.principalForKey(DEMO_DEFAULTS.adminKey)).toEqual({ kind: 'admin', id: 'admin_demo' })
    expect(b.edgeConfig()).toEqual(a.edgeConfig())
    await b.close()
    closers.shift()
    const c = await a.createCampaign({ id: 'cmp_new', advertiserId: 'adv_demo', pricing: { model: 'cpc', priceMicros: 7 } })
    const b2 = await replica(log, bDir)
    expect(b2.getCampaign('cmp_new')).toEqual(c)
    expect(b2.configVersion()).toBe(a.configVersion())
  })

  it('moves a store written before the shared topic into the topic once, so no tenant is lost on upgrade', async () => {
    const dir = tmp()
    const legacy = openTenantStore({ dir })
    const { apiKey } = await legacy.createAdvertiser({ id: 'adv_old', name: 'Old' })
    await legacy.close()
    const log = await sharedLog()
    const a = await replica(log, dir)
    expect(a.principalForKey(apiKey)).toEqual({ kind: 'advertiser', id: 'adv_old' })
    const b = await replica(log)
    expect(b.principalForKey(apiKey)).toEqual({ kind: 'advertiser', id: 'adv_old' })
    expect(b.getAdvertiser('adv_old')).toEqual(a.getAdvertiser('adv_old'))
    expect(hashApiKey(apiKey)).not.toBe(apiKey)
    expect(JSON.stringify(await log.readRange(TENANTS_TOPIC, 0, 0))).not.toContain(apiKey)
  })
})

describe('the TenantStore contract on the shared store', () => {
  // One embedded log for the suite; each store (view directory) has its own tenant topic, so a
  // reopened store finds its own history.
  let log: EmbeddedLogHandle
  const suiteDir = mkdtempSync(join(tmpdir(), 'adc-shared-suite-'))
  beforeAll(async () => {
    log = await createEmbeddedLog({ dir: suiteDir, logger, idleWaitMs: 50 })
  })
  afterAll(async () => {
    await log.close()
    rmSync(suiteDir, { recursive: true, force: true })
  })
  tenantStoreSuite((dir) => openSharedTenantStore({ dir, log, logger, topic: `tenants-${basename(dir)}` }))
})
