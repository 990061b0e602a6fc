import { runDurableObjectAlarm } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { impression, postBatch, proxyControl, proxyReceived, proxyReset, type ProxyMode } from '../../test/helpers.js'

/**
 * Model test: any interleaving of batches, proxy failures (500, hang, partial rejection, retriable
 * or not) and alarm rounds ends, once the proxy recovers, with every accepted event delivered
 * exactly once, or kept as a dead row when the proxy refused it for good.
 */
const spool = () => env.SPOOL.get(env.SPOOL.idFromName('pub:pub_model'))

interface Model {
  accepted: Set<string>
}
interface Real {
  lastStatus: number
}

class SendBatch implements fc.AsyncCommand<Model, Real> {
  constructor(readonly n: number) {}
  check = () => true
  async run(m: Model, r: Real): Promise<void> {
    const events = Array.from({ length: this.n }, () => impression({ publisherId: 'pub_model' }))
    const res = await postBatch('impressions', { events }, { key: 'pk_model' })
    r.lastStatus = res.status
    // A 202 is a promise that these events will be delivered.
    expect(res.status).toBe(202)
    const body = await res.json<any>()
    body.results.forEach((x: any, i: number) => {
      if (x.status === 'accepted') m.accepted.add(events[i]!.impressionId as string)
    })
  }
  toString = () => `send(${this.n})`
}

class SetProxy implements fc.AsyncCommand<Model, Real> {
  constructor(readonly mode: ProxyMode) {}
  check = () => true
  async run(): Promise<void> {
    await proxyControl(this.mode)
  }
  toString = () => `proxy(${JSON.stringify(this.mode)})`
}

class RunAlarm implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(): Promise<void> {
    await runDurableObjectAlarm(spool())
  }
  toString = () => 'alarm'
}

async function drain(): Promise<void> {
  for (let i = 0; i < 30 && ((await spool().stats()).byTopic['ad-events']?.depth ?? 0) > 0; i++) await runDurableObjectAlarm(spool())
}

describe('Spool model', () => {
  it('delivered ∪ dead == accepted, each exactly once, for any failure interleaving', async () => {
    const commands = fc.commands([
      fc.integer({ min: 1, max: 6 }).map((n) => new SendBatch(n)),
      fc.constantFrom<ProxyMode>(
        { mode: 'ok' }, { mode: 'fail500' }, { mode: 'hang', times: 1 },
        { mode: 'reject', rejectEvery: 2, rejectCode: 2 }, { mode: 'reject', rejectEvery: 3, rejectCode: 1 },
      ).map((m) => new SetProxy(m)),
      fc.constant(new RunAlarm()),
    ], { maxCommands: 8 })

    await fc.assert(fc.asyncProperty(commands, async (cmds) => {
      await proxyControl({ mode: 'ok' })
      await drain()
      await proxyReset()
      const before = await spool().stats()
      const deadBefore = before.byTopic['ad-events']?.dead ?? 0
      const model: Model = { accepted: new Set() }
      await fc.asyncModelRun(() => ({ model, real: { lastStatus: 0 } }), cmds)
      await proxyControl({ mode: 'ok' })
      await drain()
      const after = await spool().stats()
      expect(after.byTopic['ad-events']?.depth ?? 0).toBe(0)
      const delivered = (await proxyReceived()).records.map((r) => r.key)
      const dead = (after.byTopic['ad-events']?.dead ?? 0) - deadBefore
      expect(new Set(delivered).size).toBe(delivered.length)
      expect(delivered.every((k) => model.accepted.has(k))).toBe(true)
      expect(delivered.length + dead).toBe(model.accepted.size)
    }), { numRuns: 12 })
  })
})
