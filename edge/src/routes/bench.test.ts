import { SELF } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { EDGE, impression } from '../../test/helpers.js'

describe('the edge bench\'s validate-only route', () => {
  it('does not exist unless BENCH_ROUTES=1, even with a valid publisher key', async () => {
    const res = await SELF.fetch(`${EDGE}/v1/bench/validate/impressions`, {
      method: 'POST', headers: { authorization: 'Bearer pk_test', 'content-type': 'application/json' }, body: JSON.stringify({ events: [impression()] }),
    })
    expect(res.status).toBe(404)
    expect((await res.json<any>()).error.code).toBe('not_found')
  })
})
