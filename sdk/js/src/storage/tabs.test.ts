import { describe, expect, it } from 'vitest'
import { createClient, type Client } from '../client.js'
import { localStorageStorage, type LocalStorageLike } from './storage.js'

/** One origin's localStorage, shared by every tab of the test. */
function sharedLocalStorage(): LocalStorageLike & { map: Map<string, string> } {
  const map = new Map<string, string>()
  return {
    map,
    getItem: (k) => map.get(k) ?? null,
    setItem: (k, v) => void map.set(k, v),
    removeItem: (k) => void map.delete(k),
    key: (i) => [...map.keys()][i] ?? null,
    get length() {
      return map.size
    },
  }
}

const imp = (i: number) => ({ adId: 'ad_1', campaignId: 'cmp_1', requestId: `req_${i}`, impressionId: `imp_${i}` })

describe('localStorage shared by tabs', () => {
  let clock = 1_800_000_000_000
  const offline = async () => { throw new TypeError('offline') }

  /** A tab: its own page (events), the origin's storage, a client that cannot reach the edge yet. */
  function tab(store: LocalStorageLike, tabId: string, fetch: typeof offline | ((url: string, init: { body: string }) => Promise<Response>) = offline) {
    const page = new EventTarget()
    const client = createClient({
      endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { serverKey: 'sk' }, flushAt: 1000, flushIntervalMs: 0, lifecycle: [],
      storage: localStorageStorage('adc:queue', store, { tabId, now: () => clock, win: page }), fetch, now: () => clock,
    })
    return { client, page }
  }

  const sendAll = () => {
    const sent: string[] = []
    const fetch = async (_url: string, init: { body: string }) => {
      const events = (JSON.parse(init.body) as { events: Array<{ impressionId: string; eventId: string }> }).events
      sent.push(...events.map((e) => e.impressionId))
      return new Response(JSON.stringify({ results: events.map((e, index) => ({ index, eventId: e.eventId, status: 'accepted' })) }), { status: 202 })
    }
    return { sent, fetch }
  }

  it('two tabs queueing at once lose nothing: a tab started later sends both tabs\' events once they are closed', async () => {
    const store = sharedLocalStorage()
    const a = tab(store, 'a')
    const b = tab(store, 'b')
    // Interleaved: each write of one tab would have replaced the other's queue under one shared key.
    await a.client.impression(imp(1))
    await b.client.impression(imp(2))
    await a.client.impression(imp(3))
    await b.client.impression(imp(4))
    // Both tabs are closed without a word (a crash, a killed mobile browser), and the lease runs out.
    clock += 10 * 60_000
    const { sent, fetch } = sendAll()
    const c = tab(store, 'c', fetch)
    expect(await c.client.flush()).toMatchObject({ delivered: 4, pending: 0 })
    expect(sent.sort()).toEqual(['imp_1', 'imp_2', 'imp_3', 'imp_4'])
    // Nothing is left behind to be sent again.
    expect([...store.map.keys()].filter((k) => k.startsWith('adc:queue:tab:'))).toEqual([])
  })

  it('a live tab keeps its queue; one closed (pagehide) is taken over at once', async () => {
    const store = sharedLocalStorage()
    const a = tab(store, 'a')
    const b = tab(store, 'b')
    await a.client.impression(imp(1))
    await b.client.impression(imp(2))
    b.page.dispatchEvent(new Event('pagehide'))
    clock += 1_000
    const { sent, fetch } = sendAll()
    const c = tab(store, 'c', fetch)
    await c.client.flush()
    expect(sent).toEqual(['imp_2'])
    expect(a.client.stats().queued).toBe(1)
    expect(store.map.has('adc:queue:tab:a')).toBe(true)
  })

  it('the single key earlier versions shared is taken over, and a reloaded page takes over the queue its previous page released', async () => {
    const store = sharedLocalStorage()
    store.setItem('adc:queue', JSON.stringify({ v: 1, events: [{ type: 'impression', eventId: '01JD000000000000000000OLD0', json: '{"impressionId":"imp_old"}', bytes: 26 }] }))
    const a = tab(store, 'a')
    await a.client.impression(imp(1))
    expect(a.client.stats().queued).toBe(2)
    expect(store.map.has('adc:queue')).toBe(false)
    // The page is reloaded: the new page is another tab id; the old one's pagehide released its queue.
    a.page.dispatchEvent(new Event('pagehide'))
    const { sent, fetch } = sendAll()
    const again: Client = tab(store, 'a2', fetch).client
    await again.flush()
    expect(sent.sort()).toEqual(['imp_1', 'imp_old'])
  })

  it('a store without key enumeration keeps one key, as before', async () => {
    const map = new Map<string, string>()
    const s = localStorageStorage('k', { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v) })
    await s.write('x')
    expect(map.get('k')).toBe('x')
  })
  it('a quota too small to store an adopted queue twice does not keep a tab from sending it', async () => {
    const store = sharedLocalStorage()
    const a = tab(store, 'a')
    for (let i = 0; i < 20; i++) await a.client.impression(imp(i))
    a.page.dispatchEvent(new Event('pagehide'))
    // The origin's quota: what is stored now and a little more, not a second copy of tab a's queue.
    const quota = [...store.map].reduce((n, [k, v]) => n + k.length + v.length, 0) + 200
    const setItem = store.setItem
    store.setItem = (k, v) => {
      const used = [...store.map].reduce((n, [key, val]) => n + (key === k ? 0 : key.length + val.length), 0)
      if (used + k.length + v.length > quota) throw new DOMException('the quota has been exceeded', 'QuotaExceededError')
      setItem(k, v)
    }
    const errors: unknown[] = []
    const { sent, fetch } = sendAll()
    const c = createClient({
      endpoint: 'http://127.0.0.1:9', publisherId: 'pub_1', auth: { serverKey: 'sk' }, flushAt: 1000, flushIntervalMs: 0, lifecycle: [],
      storage: localStorageStorage('adc:queue', store, { tabId: 'c', now: () => clock, win: new EventTarget() }), fetch, now: () => clock,
      onError: (err) => errors.push(err),
    })
    expect(await c.flush()).toMatchObject({ delivered: 20, pending: 0 })
    expect(sent).toHaveLength(20)
    // Once sent, nothing is left behind to be sent again.
    expect([...store.map.keys()].filter((k) => k.startsWith('adc:queue:tab:'))).toEqual([])
  })
})
