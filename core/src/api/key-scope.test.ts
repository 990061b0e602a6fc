import { beforeAll, describe, expect, it } from 'vitest'
import { createLocalObjectStore } from '../objects/local-store.js'
import { DEMO_DEFAULTS } from '../tenants/tenant-store.js'
import { FIXTURE_DAY, fixtureDay, insertRows } from '../testing/api.js'
import { useApiEnv } from '../testing/api-env.js'
import { join } from 'node:path'

/**
 * A publisher's public-scope key lives in page HTML (the tag's data-key, the beacon's ?k=): anyone
 * who views a page has it. It sends events to the edge and nothing else; core's API (settlement,
 * export files) answers it as it answers no key at all, while the same publisher's server key reads.
 */
const NOW = Date.parse(`${FIXTURE_DAY}T00:00:00Z`) + 2 * 86_400_000
const PUBLIC_KEY = 'pkpub_scope_test_0123456789'

const env = useApiEnv({
  tempPrefix: 'adc-key-scope-', clock: () => NOW, seed: { publicKey: PUBLIC_KEY },
  app: ({ tmp }) => ({ exportStore: createLocalObjectStore({ root: join(tmp(), 'exports') }) }),
})

beforeAll(async () => {
  await insertRows(env.ch.client, 'adc.events_raw', fixtureDay())
  await env.billing.submitBilling(FIXTURE_DAY, 'test')
  await env.billing.idle()
})

const get = (path: string, key: string) => env.app.request(path, { headers: { authorization: `Bearer ${key}` } })

describe('a publisher public-scope key on core API', () => {
  const paths = [
    `/v1/settlement/daily?day=${FIXTURE_DAY}`,
    `/v1/settlement/daily?day=${FIXTURE_DAY}&publisherId=pub_demo`,
    `/v1/reports/reconcile/${FIXTURE_DAY}/files`,
    `/v1/reports/reconcile/${FIXTURE_DAY}/files/publisher-pub_demo.csv`,
  ]

  it('reads nothing: settlement and export files are refused', async () => {
    for (const path of paths) {
      const res = await get(path, PUBLIC_KEY)
      expect(res.status, path).toBe(403)
      expect(((await res.json()) as { error: { code: string } }).error.code, path).toBe('forbidden')
    }
  })

  it("while the same publisher's server key reads them", async () => {
    for (const path of paths) expect((await get(path, DEMO_DEFAULTS.publisherKey)).status, path).toBe(200)
  })
})
