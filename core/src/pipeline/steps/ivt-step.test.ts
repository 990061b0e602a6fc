import { describe, expect, it } from 'vitest'
import type { Decoded } from '../types.js'
import { decoded, T, useStores } from '../../testing/records.js'
import { createIvtStep } from './ivt-step.js'

const newStore = useStores()

describe('ivtStep', () => {
  const joined = (d: Decoded, impressionTs?: number) => ({ ...d, firstSeenOffset: d.ref.offset, join: { status: 'joined' as const, ...(impressionTs !== undefined ? { impressionTs } : {}) } })
  it('quarantines bots, datacenter traffic, prefetches and fast clicks with the strongest reason and the model version', async () => {
    const ivt = createIvtStep({ store: newStore() })
    expect(await ivt(joined(decoded({ type: 'impression', n: 70, ua: 'curl/8.4.0' })))).toMatchObject({ kind: 'unbilled', reason: 'givt_known_bot', value: { ivt: { score: 1, quarantined: true, modelVersion: expect.stringMatching(/^ivt-/) } } })
    expect(await ivt(joined(decoded({ type: 'impression', n: 71, ipPrefix: '52.1.2.0/24' })))).toMatchObject({ kind: 'unbilled', reason: 'givt_datacenter_ip' })
    expect(await ivt(joined(decoded({ type: 'click', n: 72, prefetch: true })))).toMatchObject({ kind: 'unbilled', reason: 'prefetch_click' })
    expect(await ivt(joined(decoded({ type: 'click', n: 73, ts: T + 300 }), T))).toMatchObject({ kind: 'unbilled', reason: 'sivt_fast_click', value: { ivt: { score: 0.85 } } })
    expect(await ivt(joined(decoded({ type: 'impression', n: 74, ua: null })))).toMatchObject({ kind: 'unbilled', reason: 'givt_missing_ua' })
    expect(await ivt(joined(decoded({ type: 'click', n: 75, ts: T + 5_000 }), T))).toMatchObject({ kind: 'ok', value: { ivt: { score: 0, reasons: [] } } })
  })

  it('flags a burst from one user key within a minute, from the event over the limit on', async () => {
    const ivt = createIvtStep({ store: newStore(), limits: { ipPrefixPerMinute: 1000, userKeyPerMinute: 3, fastClickMs: 1000 } })
    const kinds: string[] = []
    for (let i = 0; i < 5; i++) kinds.push((await ivt(joined(decoded({ type: 'impression', n: 80 + i, userKey: 'u_burst' })))).kind)
    expect(kinds).toEqual(['ok', 'ok', 'ok', 'unbilled', 'unbilled'])
  })
})
