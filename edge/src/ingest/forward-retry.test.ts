import { beforeEach, describe, expect, it } from 'vitest'
import { eventually, impression, postBatch, proxyControl, proxyReceived, proxyReset } from '../../test/helpers.js'

beforeEach(async () => {
  await proxyReset()
})

/**
 * A produce the proxy stored but acknowledged too late: the edge's forwarder gives up on the first
 * attempt after PROXY_TIMEOUT_MS (300 ms in these tests) and sends the batch again, so the log holds
 * each of those accepted events twice. The copies are the same envelope, byte for byte (the same
 * idempotency key and edge receive time): that is what lets core's accounting count one acceptance
 * once (core/src/api/routes/reports.ts), and what tells it from a client's re-send, which the edge
 * stamps with its own receive time.
 */
describe('a produce stored but acknowledged after the timeout', () => {
  it('is sent again: each accepted event reaches the log twice as the same envelope, and the edge counts it once', async () => {
    await proxyControl({ mode: 'slowAck', times: 1, delayMs: 1_500 })
    const events = Array.from({ length: 5 }, () => impression())
    const res = await postBatch('impressions', { events })
    expect(res.status).toBe(202)
    expect((await res.json<any>()).accepted).toBe(5)

    const got = await proxyReceived()
    expect(got.calls).toBe(2)
    expect(got.records.length).toBe(10)
    for (const e of events) {
      const copies = got.records.filter((r) => r.value.event.eventId === e.eventId)
      expect(copies.length).toBe(2)
      expect(JSON.stringify(copies[1]!.value)).toBe(JSON.stringify(copies[0]!.value))
    }
    const stats = await eventually(() => proxyReceived('edge-stats'), (v) => v.records.length >= 1)
    const counted = stats.records.reduce((n, r) => n + Number(r.value.accepted), 0)
    expect(counted).toBe(5)
  })
})
