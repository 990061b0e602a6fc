import { runDurableObjectAlarm } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { MAX_RETRY_DELAY_MS } from './spool-policy.js'
import { impression, postBatch, proxyControl, proxyReceived, proxyReset } from '../../test/helpers.js'

const spoolOf = (publisherId: string) => env.SPOOL.get(env.SPOOL.idFromName(`pub:${publisherId}`))

/** Runs the spool's alarm until it is empty (bounded), as the runtime would over time. */
async function drain(publisherId: string, maxRounds = 20): Promise<number> {
  const spool = spoolOf(publisherId)
  let rounds = 0
  while ((await spool.stats()).depth > 0 && rounds < maxRounds) {
    await runDurableObjectAlarm(spool)
    rounds++
  }
  return rounds
}

const eventsDepth = async () => (await spoolOf('pub_other').stats()).byTopic['ad-events']?.depth ?? 0

async function send(n: number, key = 'pk_other'): Promise<{ accepted: number; ids: string[] }> {
  const events = Array.from({ length: n }, () => impression({ publisherId: 'pub_other' }))
  const res = await postBatch('impressions', { events }, { key })
  expect(res.status).toBe(202)
  const body = await res.json<any>()
  return { accepted: body.accepted, ids: events.map((e) => e.impressionId as string) }
}

beforeEach(async () => {
  await proxyReset()
  await drain('pub_other')
  await proxyReset()
})

describe('Spool', () => {
  it('delivered equals accepted across proxy 500, timeout, partial rejection and recovery', async () => {
    const spool = spoolOf('pub_other')
    await proxyControl({ mode: 'fail500' })
    const a = await send(10)
    await proxyControl({ mode: 'hang' })
    const b = await send(10)
    await proxyControl({ mode: 'reject', rejectEvery: 3, rejectCode: 1 })
    const c = await send(9)
    const accepted = a.accepted + b.accepted + c.accepted
    expect(accepted).toBe(29)
    // Partial rejection delivered 6 of batch c at once; the 3 refused ones and batches a, b wait.
    expect(await eventsDepth()).toBe(23)

    // Still down: a round delivers nothing and backs off, longer each time.
    await proxyControl({ mode: 'fail500' })
    await runDurableObjectAlarm(spool)
    expect(await eventsDepth()).toBe(23)
    expect((await spool.stats()).failStreak).toBe(1)
    await runDurableObjectAlarm(spool)
    const s2 = await spool.stats()
    expect(s2.failStreak).toBe(2)
    // Test settings start at 10 minutes, so the backoff is already at its 5-minute cap (±20 %).
    expect(s2.nextAlarm! - Date.now()).toBeGreaterThan(0.8 * MAX_RETRY_DELAY_MS - 5_000)

    // Timeout, then partial rejection: some get through, the rest stay.
    await proxyControl({ mode: 'hang' })
    await runDurableObjectAlarm(spool)
    expect(await eventsDepth()).toBe(23)
    await proxyControl({ mode: 'reject', rejectEvery: 2, rejectCode: 2 })
    await runDurableObjectAlarm(spool)
    expect(await eventsDepth()).toBe(12)

    // Recovery.
    await proxyControl({ mode: 'ok' })
    await drain('pub_other')
    expect((await spool.stats()).depth).toBe(0)
    const got = await proxyReceived()
    const delivered = got.records.map((r) => r.key)
    expect(delivered.length).toBe(accepted)
    expect(new Set(delivered)).toEqual(new Set([...a.ids, ...b.ids, ...c.ids]))
  })

  it('delivers spooled events in the order they were accepted', async () => {
    await proxyControl({ mode: 'fail500' })
    const a = await send(5)
    const b = await send(5)
    await proxyControl({ mode: 'ok' })
    await drain('pub_other')
    expect((await proxyReceived()).records.map((r) => r.key)).toEqual([...a.ids, ...b.ids])
  })

  it('keeps records the proxy refuses forever as dead rows, not lost, and drains the rest', async () => {
    const spool = spoolOf('pub_other')
    await proxyControl({ mode: 'fail500' })
    await send(4)
    await proxyControl({ mode: 'reject', rejectEvery: 4, rejectCode: 1 })
    await drain('pub_other', 40)
    const stats = await spool.stats()
    expect(stats.depth).toBe(0)
    expect(stats.byTopic['ad-events']).toEqual({ depth: 0, dead: 1 })
    expect((await proxyReceived()).records.length).toBe(3)
  })

  it('spools events the proxy refuses for credentials (401) without retrying them, logs it, and redelivers with credentials', async () => {
    const logged = vi.spyOn(console, 'error')
    try {
      await proxyControl({ mode: 'unauthorized' })
      const a = await send(3)
      expect(a.accepted).toBe(3)
      // A 401 is fatal: one produce call, no retries within the request, then the Spool holds them.
      expect((await proxyReceived()).unauthorized).toBeGreaterThanOrEqual(1)
      expect(await eventsDepth()).toBe(3)
      const line = logged.mock.calls.map((c) => String(c[0])).find((l) => l.includes('proxy_unauthorized'))
      expect(line).toBeDefined()
      expect(JSON.parse(line!)).toMatchObject({ reason: 'proxy_unauthorized', status: 401, topic: 'ad-events' })

      // Credentials fixed: the Spool's redelivery sends them too (the fake proxy checks every call).
      await proxyControl({ mode: 'ok' })
      await drain('pub_other')
      expect(await eventsDepth()).toBe(0)
      expect((await proxyReceived()).records.map((r) => r.key)).toEqual(a.ids)
    } finally {
      logged.mockRestore()
    }
  })

  it('spools the edge-stats record too when the proxy is down', async () => {
    await proxyControl({ mode: 'fail500' })
    await send(2)
    await proxyControl({ mode: 'ok' })
    // waitUntil work (the stats record) may still be in flight.
    for (let i = 0; i < 40 && (await spoolOf('pub_other').stats()).depth < 3; i++) await new Promise((r) => setTimeout(r, 25))
    await drain('pub_other')
    const stats = await proxyReceived('edge-stats')
    expect(stats.records.map((r) => r.value.accepted)).toContain(2)
  })
})
