import { describe, expect, it } from 'vitest'
import { DEMO_DEFAULTS } from '../tenants/tenant-store.js'
import { useApiEnv } from '../testing/api-env.js'

/**
 * Billing days are ClickHouse `Date`s (1970-01-01 to 2149-06-06). A day outside that range used to be
 * taken and saturated by the engine: a billing job for 1969-12-31 wrote a new final version of
 * 1970-01-01 (computed from another day's events), and a read of 1900-01-01 answered 1970-01-01's.
 */
const NOW = Date.parse('2026-11-22T12:00:00Z')
// Raw events kept forever: 1970-01-01 is then a day the engine may hold (past a retention, a close is refused: retention-reads.test.ts).
const env = useApiEnv({ tempPrefix: 'adc-day-range-', clock: () => NOW, app: () => ({ retention: { rawDays: 0 } }) })
const ADMIN = { authorization: `Bearer ${DEMO_DEFAULTS.adminKey}` }

const submit = (day: string) => env.app.request('/v1/billing/jobs', { method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ day }) })

describe('a billing day outside what the engine stores', () => {
  it('is refused (400) by the job, reprocess and read routes, and writes no version of another day', async () => {
    for (const day of ['1969-12-31', '1900-01-01', '0000-01-01']) {
      const res = await submit(day)
      expect(res.status, day).toBe(400)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_body')
      const read = await env.app.request(`/v1/billing/daily?day=${day}&advertiserId=adv_demo`, { headers: ADMIN })
      expect(read.status, day).toBe(400)
      expect((await env.app.request(`/v1/reports/reconcile/${day}`, { headers: ADMIN })).status, day).toBe(400)
    }
    const reprocess = await env.app.request('/v1/reprocess', {
      method: 'POST', headers: { ...ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ from: '1969-12-31', to: '1970-01-01', reason: 'x', modelVersion: 'ivt-2026.12.1' }),
    })
    expect(reprocess.status).toBe(400)
    await env.billing.idle()
    expect(env.billing.list()).toEqual([])
    expect(await env.billing.snapshots.versions('1970-01-01')).toEqual([])
  })

  it('takes the first day the engine stores', async () => {
    expect((await submit('1970-01-01')).status).toBe(202)
    await env.billing.idle()
    expect((await env.billing.snapshots.versions('1970-01-01')).map((v) => v.day)).toEqual(['1970-01-01'])
  })
})
