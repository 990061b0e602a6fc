/**
 * A process using the SDK with the file queue, for the conformance suite's crash test. Run as
 * `node --import tsx test/e2e/sdk-child.ts` with SDK_* variables:
 * - SDK_MODE=produce: queues SDK_EVENTS impressions (each stored before the next), prints `queued`,
 *   then flushes; after the first answer from the edge it prints `answered` and holds that answer
 *   for a while, so a SIGKILL lands after the edge stored a batch and before the queue forgot it.
 * - SDK_MODE=resume: flushes what a previous run left, then prints `done <json stats>`.
 */
import { createClient, type FlushResult } from '@adc/sdk'
import { fileStorage } from '@adc/sdk/node'

const env = (name: string): string => {
  const v = process.env[name]
  if (v === undefined) throw new Error(`${name} is required`)
  return v
}

const mode = env('SDK_MODE')
let answers = 0
const client = createClient({
  endpoint: env('SDK_ENDPOINT'),
  publisherId: env('SDK_PUBLISHER'),
  auth: { keyId: env('SDK_KEY_ID'), secret: env('SDK_SECRET') },
  storage: fileStorage(env('SDK_QUEUE_FILE')),
  flushAt: 1_000_000,
  flushBytes: 1e12,
  maxQueueEvents: 10_000,
  onRejected: (d) => process.stdout.write(`rejected ${JSON.stringify(d)}\n`),
  flushIntervalMs: 0,
  defaults: { channel: 'app', device: 'mobile' },
  backoff: { baseMs: 100, maxMs: 1000 },
  lifecycle: [],
  async fetch(url, init) {
    const res = await fetch(url, init)
    if (mode === 'produce' && ++answers === 1) {
      process.stdout.write('answered\n')
      await new Promise((r) => setTimeout(r, 30_000))
    }
    return res
  },
})

if (mode === 'produce') {
  const n = Number(env('SDK_EVENTS'))
  const run = env('SDK_RUN')
  for (let i = 0; i < n; i++) {
    await client.impression({
      adId: 'ad_sdk', campaignId: env('SDK_CAMPAIGN'), requestId: `req_${run}_${i}`, impressionId: `imp_${run}_${i}`,
      ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
      ip: `198.51.${Math.floor(i / 250) % 250}.${i % 250}`,
    })
  }
  process.stdout.write('queued\n')
  await client.flush()
} else {
  let r: FlushResult
  do {
    r = await client.flush()
    if (r.retryInMs !== undefined) await new Promise((done) => setTimeout(done, r.retryInMs))
  } while (r.pending > 0)
  process.stdout.write(`done ${JSON.stringify(client.stats())}\n`)
}
