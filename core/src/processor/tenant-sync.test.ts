import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createEmbeddedLog } from '../log/embedded-log.js'
import { heldLog, type HeldLog } from '../testing/held-log.js'
import { openSharedTenantStore } from '../tenants/shared-tenant-store.js'
import type { TenantStore } from '../tenants/tenant-store.js'
import { createTenantSync, TenantViewBehindError, type TenantSyncOutcome } from './tenant-sync.js'

const logger = pino({ level: 'silent' })
const cleanups: Array<() => Promise<unknown> | void> = []

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined)
})

/** Replica A writes; replica B (held back on demand) is the processor's view. */
async function replicas(): Promise<{ a: TenantStore; b: TenantStore; held: HeldLog }> {
  const dir = mkdtempSync(join(tmpdir(), 'adc-tenant-sync-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const log = await createEmbeddedLog({ dir: join(dir, 'log'), logger, idleWaitMs: 20 })
  cleanups.push(() => log.close())
  const a = await openSharedTenantStore({ dir: join(dir, 'a'), log, logger })
  cleanups.push(() => a.close())
  const held = heldLog(log)
  cleanups.push(() => held.release())
  const b = await openSharedTenantStore({ dir: join(dir, 'b'), log: held.log, logger })
  cleanups.push(() => b.close())
  await a.createAdvertiser({ id: 'adv', name: 'Adv' })
  expect(await b.catchUp(5_000)).toBe(true)
  return { a, b, held }
}

function counted() {
  const counts: Partial<Record<TenantSyncOutcome, number>> = {}
  return { counts, count: (o: TenantSyncOutcome) => void (counts[o] = (counts[o] ?? 0) + 1) }
}

describe('tenant sync before an unknown_campaign verdict', () => {
  it('gives the verdict at once when the view holds the stamped version', async () => {
    const { a, b } = await replicas()
    const { counts, count } = counted()
    const sync = createTenantSync({ tenants: b, logger, count })
    sync.newBatch()
    expect(sync.settle(a.configVersion())).toBeUndefined()
    expect(sync.settle(0)).toBeUndefined()
    expect(counts).toEqual({})
  })

  it('catches the view up to a later stamp, once per batch', async () => {
    const { a, b, held } = await replicas()
    held.hold()
    await a.createCampaign({ id: 'cmp_x', advertiserId: 'adv', pricing: { model: 'cpm', priceMicros: 1 } })
    const stamp = a.configVersion()
    const { counts, count } = counted()
    const sync = createTenantSync({ tenants: b, logger, count, timeoutMs: 5_000 })
    sync.newBatch()
    const waiting = sync.settle(stamp)
    expect(waiting).toBeInstanceOf(Promise)
    expect(b.getCampaign('cmp_x')).toBeUndefined()
    setTimeout(() => held.release(), 100)
    await waiting
    expect(b.getCampaign('cmp_x')).toBeDefined()
    // Caught up for this batch: an unstamped record of it is judged at once.
    expect(sync.settle(undefined)).toBeUndefined()
    expect(counts).toEqual({ caught_up: 1 })
    sync.newBatch()
    await sync.settle(undefined)
    expect(counts).toEqual({ caught_up: 2 })
  })

  it('refuses to judge while the view stays behind (the batch is retried), and counts a stamp the caught-up view never reaches', async () => {
    const { a, b, held } = await replicas()
    held.hold()
    await a.createCampaign({ id: 'cmp_y', advertiserId: 'adv', pricing: { model: 'cpm', priceMicros: 1 } })
    const { counts, count } = counted()
    const sync = createTenantSync({ tenants: b, logger, count, timeoutMs: 150 })
    sync.newBatch()
    await expect(sync.settle(a.configVersion())).rejects.toBeInstanceOf(TenantViewBehindError)
    expect(counts).toEqual({ behind: 1 })
    held.release()
    sync.newBatch()
    await sync.settle(a.configVersion() + 50)
    expect(counts).toEqual({ behind: 1, caught_up: 1, version_ahead: 1 })
    // Not waited for again in the batch.
    expect(sync.settle(a.configVersion() + 50)).toBeUndefined()
    expect(counts).toEqual({ behind: 1, caught_up: 1, version_ahead: 2 })
  })
})
