import { afterEach, describe, expect, it } from 'vitest'
import { createClient } from './client.js'
import { memoryStorage } from './storage/storage.js'
import { appStateLifecycle, browserLifecycle } from './lifecycle.js'

const imp = { adId: 'ad_1', campaignId: 'cmp_1', requestId: 'req_1', impressionId: 'imp_1' }
const g = globalThis as { navigator?: unknown }
const original = Object.getOwnPropertyDescriptor(globalThis, 'navigator')

afterEach(() => {
  if (original) Object.defineProperty(globalThis, 'navigator', original)
  else delete g.navigator
})

describe('lifecycle hooks', () => {
  it('a hidden page hands the queue to sendBeacon with the key in the URL; nothing goes through fetch', async () => {
    const beacons: Array<{ url: string; body: string }> = []
    Object.defineProperty(globalThis, 'navigator', { configurable: true, value: { sendBeacon: (url: string, body: string) => beacons.push({ url, body }) > 0 } })
    const win = new EventTarget() as EventTarget & { document: EventTarget & { visibilityState: string } }
    win.document = Object.assign(new EventTarget(), { visibilityState: 'visible' })
    let fetched = 0
    const client = createClient({
      endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { publicKey: 'pk_1' }, flushIntervalMs: 0,
      lifecycle: [browserLifecycle(win as never)], fetch: async () => { fetched++; return new Response(null, { status: 500 }) },
    })
    await client.impression(imp)
    win.document.visibilityState = 'hidden'
    win.document.dispatchEvent(new Event('visibilitychange'))
    await new Promise((r) => setTimeout(r, 10))
    expect(fetched).toBe(0)
    expect(beacons).toHaveLength(1)
    expect(beacons[0]!.url).toBe('http://127.0.0.1:9/v1/beacon?k=pk_1')
    expect(JSON.parse(beacons[0]!.body).events[0]).toMatchObject({ type: 'impression', impressionId: 'imp_1' })
    expect(client.stats()).toMatchObject({ queued: 0, delivered: 1 })
    await client.shutdown()
  })

  it('a page hidden while a request is in flight or a retry is pending still hands every queued event to sendBeacon', async () => {
    const beacons: Array<{ url: string; body: string }> = []
    Object.defineProperty(globalThis, 'navigator', { configurable: true, value: { sendBeacon: (url: string, body: string) => beacons.push({ url, body }) > 0 } })
    for (const stuck of ['retry pending', 'in flight'] as const) {
      beacons.length = 0
      const win = new EventTarget() as EventTarget & { document: EventTarget & { visibilityState: string } }
      win.document = Object.assign(new EventTarget(), { visibilityState: 'visible' })
      const client = createClient({
        endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { publicKey: 'pk_1' }, flushIntervalMs: 0, backoff: { baseMs: 60_000 },
        lifecycle: [browserLifecycle(win as never)],
        // A request that never answers (a slow network), or one that fails at once (offline for a moment).
        fetch: stuck === 'in flight' ? () => new Promise<Response>(() => {}) : async () => { throw new TypeError('fetch failed') },
      })
      await client.impression(imp)
      const pass = client.flush()
      if (stuck === 'retry pending') expect((await pass).retryInMs).toBeGreaterThan(0)
      await client.impression({ ...imp, impressionId: 'imp_2' })
      win.document.visibilityState = 'hidden'
      win.document.dispatchEvent(new Event('visibilitychange'))
      await new Promise((r) => setTimeout(r, 10))
      expect(beacons.flatMap((b) => JSON.parse(b.body).events.map((e: { impressionId: string }) => e.impressionId)), stuck).toEqual(['imp_1', 'imp_2'])
      expect(client.stats().queued, stuck).toBe(0)
    }
  })

  it('nothing beaconed leaves the stored queue unless sendBeacon returned true', async () => {
    // A refusal (the browser's beacon quota is full), a throw, and a wrapper that answers a promise
    // or nothing: none of them says the browser took the body.
    const answers: Array<[string, () => unknown]> = [
      ['promise', () => Promise.resolve(true)], ['undefined', () => undefined],
      ['false', () => false], ['throws', () => { throw new TypeError('Illegal invocation') }],
    ]
    for (const [name, answer] of answers) {
      Object.defineProperty(globalThis, 'navigator', { configurable: true, value: { sendBeacon: answer } })
      const win = new EventTarget() as EventTarget & { document: EventTarget & { visibilityState: string } }
      win.document = Object.assign(new EventTarget(), { visibilityState: 'visible' })
      const storage = memoryStorage(null)
      const client = createClient({
        endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { publicKey: 'pk_1' }, flushIntervalMs: 0, storage,
        lifecycle: [browserLifecycle(win as never)], fetch: async () => { throw new TypeError('the page is gone') },
      })
      await client.impression(imp)
      win.document.dispatchEvent(new Event('visibilitychange'))
      win.document.visibilityState = 'hidden'
      win.document.dispatchEvent(new Event('visibilitychange'))
      await new Promise((r) => setTimeout(r, 10))
      expect(JSON.parse((await storage.read())!).events, name).toHaveLength(1)
      expect(client.stats(), name).toMatchObject({ queued: 1, delivered: 0, beaconed: 0 })
    }
  })

  it('when sendBeacon takes only the first body, only its events leave the stored queue', async () => {
    const beacons: string[] = []
    // The browser's keepalive quota (64 KiB in flight) takes one full body, then refuses.
    Object.defineProperty(globalThis, 'navigator', { configurable: true, value: { sendBeacon: (_url: string, body: string) => beacons.length === 0 && beacons.push(body) > 0 } })
    const win = new EventTarget() as EventTarget & { document: EventTarget & { visibilityState: string } }
    win.document = Object.assign(new EventTarget(), { visibilityState: 'visible' })
    const storage = memoryStorage(null)
    const client = createClient({
      endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { publicKey: 'pk_1' }, flushIntervalMs: 0, flushAt: 1000, flushBytes: 1 << 30, storage,
      lifecycle: [browserLifecycle(win as never)], fetch: async () => { throw new TypeError('the page is gone') },
    })
    const pad = 'x'.repeat(1000)
    for (let i = 0; i < 300; i++) await client.impression({ ...imp, impressionId: `imp_${i}`, placement: pad.slice(0, 120), userKey: pad.slice(0, 128) })
    win.document.visibilityState = 'hidden'
    win.document.dispatchEvent(new Event('visibilitychange'))
    await new Promise((r) => setTimeout(r, 10))
    const beaconed = (JSON.parse(beacons[0]!).events as Array<{ eventId: string }>).map((e) => e.eventId)
    expect(beaconed.length).toBeGreaterThan(0)
    expect(beaconed.length).toBeLessThan(300)
    const stored = (JSON.parse((await storage.read())!).events as Array<{ eventId: string }>).map((e) => e.eventId)
    expect(stored).toHaveLength(300 - beaconed.length)
    expect(stored.filter((id) => beaconed.includes(id))).toEqual([])
    expect(client.stats()).toMatchObject({ queued: 300 - beaconed.length, beaconed: beaconed.length })
  })

  it('React Native: going to the background flushes; the subscription is removed on shutdown', async () => {
    let listener: ((s: string) => void) | undefined
    let removed = false
    const appState = { addEventListener: (_: 'change', l: (s: string) => void) => { listener = l; return { remove: () => { removed = true } } } }
    const sent: string[] = []
    const client = createClient({
      endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { serverKey: 'sk' }, flushIntervalMs: 0, lifecycle: [appStateLifecycle(appState)],
      fetch: async (_url, init) => {
        sent.push(init.body)
        return new Response(JSON.stringify({ results: [{ index: 0, status: 'accepted' }] }), { status: 202 })
      },
    })
    await client.impression(imp)
    listener!('active')
    await new Promise((r) => setTimeout(r, 10))
    expect(sent).toHaveLength(0)
    listener!('background')
    await new Promise((r) => setTimeout(r, 10))
    expect(sent).toHaveLength(1)
    await client.shutdown()
    expect(removed).toBe(true)
  })
})

describe('Node process hooks', () => {
  it('beforeExit flushes once', async () => {
    const { EventEmitter } = await import('node:events')
    const { processLifecycle } = await import('./node.js')
    const proc = new EventEmitter() as unknown as NodeJS.Process
    const calls: boolean[] = []
    const off = processLifecycle(proc)((urgent) => calls.push(urgent))
    proc.emit('beforeExit', 0)
    proc.emit('beforeExit', 0)
    expect(calls).toEqual([false])
    off()
    expect((proc as unknown as InstanceType<typeof EventEmitter>).listenerCount('beforeExit')).toBe(0)
  })
})
