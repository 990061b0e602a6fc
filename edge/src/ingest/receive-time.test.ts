import { beforeEach, describe, expect, it } from 'vitest'
import { impression, postBatch, proxyReceived, proxyReset } from '../../test/helpers.js'

beforeEach(async () => {
  await proxyReset()
})

/**
 * Two requests carrying the same event, taken in together by one isolate, both get past the
 * pre-filter (neither key is confirmed when the other is checked): two acceptances, which core's
 * accounting tells apart by their receive times (receive-time.ts). Here the runtime's clock seldom
 * reads the same millisecond for both; receive-time.node.test.ts holds the receive clock to that case.
 */
describe('two concurrent requests with the same event', () => {
  it('are two acceptances with receive times of their own', async () => {
    const events = Array.from({ length: 3 }, () => impression())
    const answers = await Promise.all([postBatch('impressions', { events }), postBatch('impressions', { events })])
    const bodies = await Promise.all(answers.map((r) => r.json<any>()))
    const accepted = bodies.reduce((n, b) => n + b.accepted, 0)
    const got = await proxyReceived()
    // Every acceptance reached the log, and the two requests were taken in together.
    expect(got.records.length).toBe(accepted)
    expect(accepted).toBe(6)
    const stamps = new Set(got.records.map((r) => `${r.value.key}@${r.value.receivedAt}`))
    expect(stamps.size).toBe(accepted)
  })
})
