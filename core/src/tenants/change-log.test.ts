import { open } from 'lmdb'
import { afterEach, describe, expect, it } from 'vitest'
import { TENANTS_TOPIC } from '@adc/schemas'
import type { EmbeddedLogHandle } from '../log/embedded-log.js'
import { CHANGE_PREFIX, SYSTEM_ACTORS, keyFingerprint, type TenantActor } from './change-log.js'
import { P } from './tenant-state.js'
import { DEMO_DEFAULTS, hashApiKey, openTenantStore, seedDemoTenant, TenantConflictError, type TenantStore } from './tenant-store.js'
import { applyBootstrapAdminKey, createAdminKey } from './bootstrap.js'
import { tenantReplicas } from '../testing/tenant-replicas.js'

/**
 * Every tenant command written names who made it and when, and every replica lists the same
 * changes from the tenant topic; commands written before they named an actor still replay.
 */
const { logger, closers, tmp, sharedLog, replica, closeAll } = tenantReplicas('adc-change-log-')
const ops: TenantActor = { kind: 'admin', id: 'ops', keyFingerprint: keyFingerprint(hashApiKey('admin_ops_key')) }

afterEach(closeAll)

const topicCommands = async (log: EmbeddedLogHandle) =>
  (await log.readRange(TENANTS_TOPIC, 0, 0)).map((r) => JSON.parse(r.value) as Record<string, unknown>)

describe('the tenant change log', () => {
  it('writes who and when into every command, and lists the changes newest first on every replica, without secrets', async () => {
    const log = await sharedLog()
    const a = await replica(log)
    const b = await replica(log)
    const before = Date.now()
    const asOps = a.as(ops)
    await asOps.createAdvertiser({ id: 'adv_x', name: 'X' })
    const pub = await asOps.createPublisher({ id: 'pub_x', name: 'P' })
    const signing = await asOps.addSigningKey('pub_x', { purpose: 'request', scope: 'server' })
    await asOps.updatePublisher('pub_x', { rateLimit: { perSecond: 5, burst: 9 } })
    await expect(asOps.createAdvertiser({ id: 'adv_x', name: 'again' })).rejects.toBeInstanceOf(TenantConflictError)

    // The durable record: each command on the topic names its actor and time.
    const written = await topicCommands(log)
    expect(written.map((c) => [c.op, c.by])).toEqual([
      ['createAdvertiser', ops], ['createPublisher', ops], ['addSigningKey', ops], ['updatePublisher', ops], ['createAdvertiser', ops],
    ])
    for (const c of written) expect(c.at).toBeGreaterThanOrEqual(before)

    // Every replica folds the same log.
    const until = Date.now() + 5_000
    while (b.listChanges({ limit: 100 }).length < 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    const changes = a.listChanges({ limit: 100 })
    expect(b.listChanges({ limit: 100 })).toEqual(changes)
    expect(changes.map((c) => [c.seq, c.op, c.target, c.outcome, c.refusal])).toEqual([
      [4, 'createAdvertiser', { kind: 'advertiser', id: 'adv_x' }, 'refused', 'conflict'],
      [3, 'updatePublisher', { kind: 'publisher', id: 'pub_x' }, 'applied', undefined],
      [2, 'addSigningKey', { kind: 'publisher', id: 'pub_x' }, 'applied', undefined],
      [1, 'createPublisher', { kind: 'publisher', id: 'pub_x' }, 'applied', undefined],
      [0, 'createAdvertiser', { kind: 'advertiser', id: 'adv_x' }, 'applied', undefined],
    ])
    for (const c of changes) {
      expect(c.actor).toEqual(ops)
      expect(c.at).toBe(written[c.seq]!.at)
    }
    expect(changes[2]!.details).toEqual({ keyId: signing.keyId, purpose: 'request', scope: 'server' })
    expect(changes[3]!.details).toMatchObject({ keyFingerprint: keyFingerprint(hashApiKey(pub.apiKey)), signingKeyId: pub.signingKeyId })
    const listed = JSON.stringify(changes)
    for (const secret of [pub.apiKey, pub.publicKey, pub.signingSecret, pub.requestSigningSecret, signing.secret, hashApiKey(pub.apiKey)]) {
      expect(listed).not.toContain(secret)
    }
    // Paging: `before` a position lists what came before it.
    expect(a.listChanges({ limit: 2 }).map((c) => c.seq)).toEqual([4, 3])
    expect(a.listChanges({ limit: 2, before: 3 }).map((c) => c.seq)).toEqual([2, 1])
    expect(a.listChanges({ limit: 10, before: 1 }).map((c) => c.seq)).toEqual([0])
  })

  it("names core's own paths by their fixed system actor", async () => {
    const log = await sharedLog()
    const a = await replica(log)
    await seedDemoTenant(a, DEMO_DEFAULTS)
    const cli = await createAdminKey(a, 'ops')
    const fresh = await replica(await sharedLog())
    await applyBootstrapAdminKey(fresh, 'admin_bootstrap_key', logger)
    expect(new Set(a.listChanges({ limit: 100 }).filter((c) => c.target.id !== 'ops').map((c) => JSON.stringify(c.actor)))).toEqual(new Set([JSON.stringify(SYSTEM_ACTORS.demoSeed)]))
    expect(a.listChanges({ limit: 1 })[0]).toMatchObject({ op: 'addKey', actor: SYSTEM_ACTORS.adminCli, target: { kind: 'admin', id: 'ops' }, details: { keyFingerprint: keyFingerprint(hashApiKey(cli)) } })
    expect(fresh.listChanges({ limit: 10 })).toMatchObject([{ op: 'addKey', actor: SYSTEM_ACTORS.bootstrap, target: { kind: 'admin', id: 'admin' } }])
    // The store's own writes (no actor given) name core.
    await a.createAdvertiser({ id: 'adv_core', name: 'C' })
    expect(a.listChanges({ limit: 1 })[0]!.actor).toEqual(SYSTEM_ACTORS.core)
  })

  it('replays commands written before commands named an actor, reporting the actor as unknown and the time the log received them', async () => {
    const log = await sharedLog()
    // As an earlier build wrote them: no `by`; `at` only on creates (their creation time).
    await log.ensureTopic(TENANTS_TOPIC, 1, { compacted: true })
    await log.append(TENANTS_TOPIC, [
      { key: 'old-1', value: JSON.stringify({ op: 'createAdvertiser', id: 'adv_old', name: 'Old', keyHash: hashApiKey('ak_old'), at: 1_700_000_000_000 }), partition: 0 },
      { key: 'old-2', value: JSON.stringify({ op: 'createPublisher', id: 'pub_old', name: 'P', hash: hashApiKey('pk_old'), publicHash: hashApiKey('pkpub_old'), signingKeyId: 'k_old', signingSecret: 's', requestSigningKeyId: 'k_old_r', requestSigningSecret: 'r', rateLimit: { perSecond: 1, burst: 1 }, at: 1_700_000_000_001 }), partition: 0 },
      { key: 'old-3', value: JSON.stringify({ op: 'updatePublisher', id: 'pub_old', patch: { active: false } }), partition: 0 },
      { key: 'garbage', value: '{not json', partition: 0 },
    ])
    const appended = (await log.readRange(TENANTS_TOPIC, 0, 0))[2]!.timestamp
    const a = await replica(log)
    expect(a.principalForKey('ak_old')).toEqual({ kind: 'advertiser', id: 'adv_old' })
    expect(a.getPublisher('pub_old')?.active).toBe(false)
    await a.as(ops).createCampaign({ id: 'cmp_new', advertiserId: 'adv_old', pricing: { model: 'cpc', priceMicros: 1 } })
    expect(a.listChanges({ limit: 10 }).map((c) => [c.seq, c.op, c.actor, c.at])).toEqual([
      [4, 'createCampaign', ops, expect.any(Number)],
      [2, 'updatePublisher', { kind: 'unknown' }, appended],
      [1, 'createPublisher', { kind: 'unknown' }, 1_700_000_000_001],
      [0, 'createAdvertiser', { kind: 'unknown' }, 1_700_000_000_000],
    ])
  })

  it('rebuilds a view kept before the change log once, so its log starts at the first command of the topic', async () => {
    const log = await sharedLog()
    const dir = tmp()
    const a = await replica(log, dir)
    await a.as(ops).createAdvertiser({ id: 'adv_1', name: 'One' })
    await a.as(ops).createAdvertiser({ id: 'adv_2', name: 'Two' })
    await a.close()
    closers.shift()
    // The view as an earlier build left it: tenants and offset, no change log.
    const view = open({ path: dir, compression: false })
    for (const { key } of view.getRange({ start: CHANGE_PREFIX, end: `${CHANGE_PREFIX}\uffff` })) view.removeSync(key)
    view.removeSync(P.changeLog)
    expect(view.get(P.offset)).toBe(2)
    await view.close()
    const reopened = await replica(log, dir)
    expect(reopened.listChanges({ limit: 10 }).map((c) => [c.seq, c.target.id, c.actor])).toEqual([[1, 'adv_2', ops], [0, 'adv_1', ops]])
    expect(reopened.getAdvertiser('adv_1')?.name).toBe('One')
  })

  it('keeps the same log on a store of one process, refusals included', async () => {
    const store = openTenantStore({ dir: tmp() })
    closers.push(() => store.close())
    await store.as(ops).createAdvertiser({ id: 'adv_l', name: 'L' })
    await expect(store.as(ops).createCampaign({ id: 'cmp_l', advertiserId: 'adv_missing', pricing: { model: 'cpm', priceMicros: 1 } })).rejects.toThrow()
    expect(store.listChanges({ limit: 10 }).map((c) => [c.seq, c.op, c.actor, c.outcome, c.refusal])).toEqual([
      [1, 'createCampaign', ops, 'refused', 'unknown_reference'],
      [0, 'createAdvertiser', ops, 'applied', undefined],
    ])
  })
})
