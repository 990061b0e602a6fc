import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addDays, dayOf, dayStart } from '../../core/src/billing/days.js'
import { describeNeeding } from '../../core/src/testing/needs.js'
import { kafkaBroker } from '../../core/src/testing/tools.js'
import { startCore, eventually, type CoreHandle } from './system.js'

/**
 * Two core processes on one Kafka broker, as the compose file runs them behind its load balancer:
 * an admin write on A is served by B within seconds, the T+1 billing close runs once for both, and
 * their processors split the event partitions. Each process has its own chDB here (one process per
 * chDB directory); a deployment points both at one ClickHouse server. Needs KAFKA_BROKERS (npm test
 * starts a broker); in CI a missing broker is a failure, elsewhere the suite skips.
 * The embedded equivalent (two replicas on one embedded log, in one process) is core/src/fleet.test.ts.
 */
const brokers = process.env.KAFKA_BROKERS ?? ''
const ADMIN = { authorization: 'Bearer admin_demo_dev', 'content-type': 'application/json' }

describeNeeding('fleet on kafka', kafkaBroker(brokers !== ''), () => {
  describe('two core processes on one Kafka broker', () => {
    const run = Math.random().toString(36).slice(2, 8)
    const env = {
      KAFKA_BROKERS: brokers, FLEET_ID: `fleet-${run}`, PROCESSOR_GROUP: `adc-fleet-${run}`, LOG_PARTITIONS: '4',
      BILLING_CHECK_MS: '500', ICEBERG_ENABLED: 'false',
    }
    let a: CoreHandle
    let b: CoreHandle

    beforeAll(async () => {
      a = await startCore(env)
      b = await startCore(env)
    }, 240_000)

    afterAll(async () => {
      await b?.stop()
      await a?.stop()
    })

    it('serves an admin write on A from B within seconds, and refuses the same id on B', async () => {
      const res = await fetch(`${a.url}/v1/admin/advertisers`, { method: 'POST', headers: ADMIN, body: JSON.stringify({ id: `adv_${run}`, name: 'fleet' }) })
      expect(res.status).toBe(201)
      const { apiKey } = (await res.json()) as { apiKey: string }
      const started = Date.now()
      const status = await eventually(async () => (await fetch(`${b.url}/v1/me`, { headers: { authorization: `Bearer ${apiKey}` } })).status, (s) => s === 200, 10_000)
      expect(status).toBe(200)
      expect(Date.now() - started).toBeLessThan(10_000)
      const again = await fetch(`${b.url}/v1/admin/advertisers`, { method: 'POST', headers: ADMIN, body: JSON.stringify({ id: `adv_${run}`, name: 'again' }) })
      expect(again.status).toBe(409)
    })

    it('closes yesterday once across both processes', async () => {
      const now = Date.now()
      const yesterday = addDays(dayOf(now), -1)
      // The scheduler waits 30 minutes after UTC midnight for late events.
      const expected = now - dayStart(dayOf(now)) >= 30 * 60_000 ? 1 : 0
      const scheduled = async () => {
        const lists = await Promise.all([a, b].map(async (c) => {
          const r = await fetch(`${c.url}/v1/billing/jobs?limit=500`, { headers: ADMIN })
          return ((await r.json()) as { jobs: Array<{ id: string; reason: string; days: string[] }> }).jobs
        }))
        // Both list the fleet's jobs: count distinct ids.
        return new Set(lists.flat().filter((j) => j.reason.startsWith('scheduled close (T+1)') && j.days.includes(yesterday)).map((j) => j.id)).size
      }
      expect(await eventually(scheduled, (n) => n >= expected, 20_000)).toBe(expected)
      // Several more check intervals on both replicas: still one.
      await new Promise((r) => setTimeout(r, 3_000))
      expect(await scheduled()).toBe(expected)
    })

    it('serves a billing job submitted on A from B, run once by the lease holder', async () => {
      const day = addDays(dayOf(Date.now()), -3)
      const res = await fetch(`${a.url}/v1/billing/jobs`, { method: 'POST', headers: ADMIN, body: JSON.stringify({ day }) })
      expect(res.status).toBe(202)
      const { id } = (await res.json()) as { id: string }
      const onB = async () => {
        const r = await fetch(`${b.url}/v1/billing/jobs/${id}`, { headers: ADMIN })
        return r.status === 200 ? ((await r.json()) as { status: string; days: string[]; versions: Record<string, number> }) : undefined
      }
      const started = Date.now()
      const seen = await eventually(onB, (j) => j !== undefined, 10_000)
      expect(seen?.days).toEqual([day])
      expect(Date.now() - started).toBeLessThan(10_000)
      const done = await eventually(onB, (j) => j?.status === 'done' || j?.status === 'failed', 60_000)
      expect(done?.status).toBe('done')
      expect(done?.versions[day]).toBeGreaterThanOrEqual(1)
    })

    it('splits the event partitions between the two processors', { timeout: 170_000 }, async () => {
      const owned = async (c: CoreHandle) => {
        const text = await (await fetch(`${c.internalUrl}/metrics`)).text()
        return [...text.matchAll(/^adc_processor_partition_assigned\{topic="ad-events",partition="(\d+)"\} 1$/gm)].map((m) => Number(m[1])).sort()
      }
      const both = async () => [await owned(a), await owned(b)]
      // B's join makes the group rebalance; on a loaded machine a member may take up to kafkajs's
      // rebalance timeout (60 s) to rejoin, so the bound is twice that.
      const [pa, pb] = await eventually(both, ([x, y]) => x!.length === 2 && y!.length === 2, 120_000)
      if (pa!.length !== 2 || pb!.length !== 2) console.error(`A owns ${JSON.stringify(pa)}, B owns ${JSON.stringify(pb)}\n--- A:\n${a.output().slice(-6000)}\n--- B:\n${b.output().slice(-6000)}`)
      expect(pa).toHaveLength(2)
      expect(pb).toHaveLength(2)
      expect([...pa!, ...pb!].sort()).toEqual([0, 1, 2, 3])
    })
  })
})
