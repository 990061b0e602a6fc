import { beforeEach, describe, expect, it } from 'vitest'
import { impression, postBatch, proxyReset } from '../../test/helpers.js'

beforeEach(async () => {
  await proxyReset()
})

describe('per-publisher rate limits', () => {
  it('answers 429 with Retry-After once a publisher exceeds its bucket, while another publisher is served', async () => {
    const noisy = () => postBatch('impressions', { events: [impression({ publisherId: 'pub_noisy' }), impression({ publisherId: 'pub_noisy' })] }, { key: 'pk_noisy' })
    const statuses: number[] = []
    let limited: Response | undefined
    for (let i = 0; i < 6; i++) {
      const res = await noisy()
      statuses.push(res.status)
      if (res.status === 429) limited ??= res
      else await res.arrayBuffer()
    }
    // burst 4 = two batches of 2, then refused until it refills at 0.5 events/s
    expect(statuses.slice(0, 2)).toEqual([202, 202])
    expect(statuses.slice(2)).toContain(429)
    expect(limited).toBeDefined()
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await limited!.json()).toMatchObject({ error: { code: 'rate_limited' } })

    const [quiet] = await Promise.all([
      postBatch('impressions', { events: [impression()] }),
      noisy().then((r) => r.arrayBuffer()),
      noisy().then((r) => r.arrayBuffer()),
    ])
    expect(quiet.status).toBe(202)
  })
})
