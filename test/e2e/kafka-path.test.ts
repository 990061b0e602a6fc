import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { monotonicFactory } from 'ulid'
import { describeNeeding } from '../../core/src/testing/needs.js'
import { kafkaBroker } from '../../core/src/testing/tools.js'
import { startCore, startEdge, eventually, type CoreHandle, type EdgeHandle } from './system.js'

/**
 * The scale-out log under the same public contracts: the edge's REST Proxy v2 calls go to core's
 * gateway, which now produces into a real Apache Kafka broker; the processor consumes it as a
 * consumer group. Nothing in the edge changes. Needs KAFKA_BROKERS (npm test starts a broker);
 * in CI a missing broker is a failure, elsewhere the suite skips.
 */
const brokers = process.env.KAFKA_BROKERS ?? ''
const ADMIN = 'admin_demo_dev'
const ulid = monotonicFactory()

describeNeeding('kafka path', kafkaBroker(brokers !== ''), () => {
  describe('edge → gateway → Kafka → processor → ClickHouse', () => {
    let core: CoreHandle
    let edge: EdgeHandle
    const runId = Math.random().toString(36).slice(2, 8)

    beforeAll(async () => {
      core = await startCore({ KAFKA_BROKERS: brokers, PROCESSOR_GROUP: `adc-e2e-${runId}`, LOG_PARTITIONS: '4' })
      edge = await startEdge(core)
    }, 240_000)

    afterAll(async () => {
      await edge?.stop()
      await core?.stop()
    })

    async function admin(path: string, body: unknown) {
      const res = await fetch(`${core.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      expect(res.status).toBe(201)
      return res.json() as Promise<{ apiKey: string }>
    }

    it('counts each event once through Kafka, with retries and a restart of core', async () => {
      const adv = await admin('/v1/admin/advertisers', { id: `adv_k_${runId}`, name: 'kafka e2e' })
      await admin('/v1/admin/campaigns', { id: `cmp_k_${runId}`, advertiserId: `adv_k_${runId}`, pricing: { model: 'cpc', priceMicros: 250_000 } })
      const campaign = `cmp_k_${runId}`
      const events = Array.from({ length: 120 }, (_, i) => ({
        eventId: ulid(), ts: Date.now() - 2000, adId: 'ad_k', campaignId: campaign, publisherId: 'pub_demo', requestId: `r${i}`,
        impressionId: `imp_k_${runId}_${i}`, channel: 'web', geo: 'DE', device: 'mobile',
        ua: 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36', ip: `81.20.${i}.4`,
      }))
      const send = async (batch: unknown[], path = 'impressions') => {
        const res = await fetch(`${edge.url}/v1/events/${path}:batch`, {
          method: 'POST', headers: { authorization: 'Bearer pk_demo_publisher_dev', 'content-type': 'application/json' }, body: JSON.stringify({ events: batch }),
        })
        expect(res.status).toBe(202)
        return res.json() as Promise<{ accepted: number; duplicate: number }>
      }
      expect((await send(events)).accepted).toBe(120)
      expect((await send(events)).duplicate).toBe(120)
      const clicks = events.slice(0, 30).map((e) => ({ ...e, eventId: ulid(), ts: Date.now() - 500, clickId: `c_${e.impressionId}` }))
      expect((await send(clicks, 'clicks')).accepted).toBe(30)

      const totals = async () => {
        const q = `campaignId=${campaign}&from=${new Date(Date.now() - 3600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`
        const res = await fetch(`${core.url}/v1/metrics/realtime?${q}`, { headers: { authorization: `Bearer ${adv.apiKey}` } })
        return ((await res.json()) as { totals: { impressions: number; clicks: number } }).totals
      }
      const seen = await eventually(totals, (t) => t.impressions >= 120 && t.clicks >= 30, 90_000)
      expect(seen).toMatchObject({ impressions: 120, clicks: 30 })

      // Restart core on the same data directory and broker: the group resumes from its commits.
      const dataDir = core.dataDir
      await core.stop()
      core = await startCore({ KAFKA_BROKERS: brokers, PROCESSOR_GROUP: `adc-e2e-${runId}`, LOG_PARTITIONS: '4' }, dataDir)
      await new Promise((r) => setTimeout(r, 3000))
      expect(await totals()).toMatchObject({ impressions: 120, clicks: 30 })
    })
  })
})
