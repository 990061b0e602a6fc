import { SELF } from 'cloudflare:test'
import { beforeEach, describe, expect, it } from 'vitest'
import { EDGE, impression, postBatch, proxyReset } from '../../test/helpers.js'

beforeEach(async () => {
  await proxyReset()
})

describe("the edge's answers carry its clock, readable by a page on another origin", () => {
  it('dates every answer by the edge clock and exposes Date to cross-origin pages on the beacon route', async () => {
    const before = Math.floor(Date.now() / 1000) * 1000
    const res = await SELF.fetch(`${EDGE}/v1/beacon?k=pkpub_test`, {
      method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': 'Mozilla/5.0 test', origin: 'https://news.example' },
      body: JSON.stringify({ events: [{ type: 'impression', ...impression() }] }),
    })
    expect(res.status).toBe(202)
    // Date is not a CORS-safelisted response header: without this, the JS SDK on a page cannot read it.
    expect(res.headers.get('access-control-expose-headers')?.toLowerCase().split(/\s*,\s*/)).toContain('date')
    const date = Date.parse(res.headers.get('date') ?? '')
    expect(date).toBeGreaterThanOrEqual(before)
    expect(date).toBeLessThanOrEqual(Date.now() + 1000)
    const batch = await postBatch('impressions', { events: [impression()] }, { key: 'pk_test' })
    expect(batch.status).toBe(202)
    expect(Date.parse(batch.headers.get('date') ?? '')).toBeGreaterThanOrEqual(before)
  })
})
