import { SELF } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { EDGE } from '../../test/helpers.js'

describe('internal routes', () => {
  it('require the edge sync key', async () => {
    const res = await SELF.fetch(`${EDGE}/v1/internal/spool/pub_test`)
    expect(res.status).toBe(401)
    expect((await res.json<any>()).error.code).toBe('unauthorized')
    for (const authorization of ['Bearer edge_sync_tes', 'Bearer edge_sync_test_', 'Basic edge_sync_test', 'edge_sync_test']) {
      const wrong = await SELF.fetch(`${EDGE}/v1/internal/spool/pub_test`, { headers: { authorization } })
      expect(wrong.status, authorization).toBe(401)
      await wrong.arrayBuffer()
    }
  })

  it('report spool stats and run the dedupe benchmark against one shard', async () => {
    const auth = { authorization: 'Bearer edge_sync_test' }
    const spool = await (await SELF.fetch(`${EDGE}/v1/internal/spool/pub_nobody`, { headers: auth })).json<any>()
    expect(spool).toMatchObject({ depth: 0, dead: 0 })
    const bench = await (await SELF.fetch(`${EDGE}/v1/internal/dedupe-bench`, { method: 'POST', headers: auth, body: JSON.stringify({ rounds: 2, batch: 100, shard: 3 }) })).json<any>()
    expect(bench.checked).toBe(200)
    const stats = await (await SELF.fetch(`${EDGE}/v1/internal/dedupe/3`, { headers: auth })).json<any>()
    expect(stats.checks).toBeGreaterThanOrEqual(200)
  })
})
