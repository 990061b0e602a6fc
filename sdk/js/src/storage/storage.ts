import { mergeSnapshots } from '../queue.js'

/**
 * Where the queue lives between runs: one snapshot string, read once at start and replaced on
 * every change (writes are coalesced by the queue, never concurrent). `write` must be atomic: after
 * a crash, `read` returns the previous or the new snapshot, never a mix.
 */
export interface QueueStorage {
  read(): Promise<string | null>
  write(snapshot: string): Promise<void>
  /** false: nothing outlives the process, so the queue skips building snapshots. @default true */
  readonly durable?: boolean
}

/**
 * The in-process store (servers that accept losing the queue on a crash, tests): nothing survives
 * a restart. Without `initial` it is not durable and costs nothing per event; with it, it keeps
 * snapshots like a real store (tests of restarts).
 */
export function memoryStorage(initial?: string | null): QueueStorage {
  let value = initial ?? null
  return {
    durable: initial !== undefined,
    read: async () => value,
    write: async (snapshot) => {
      value = snapshot
    },
  }
}

/**
 * The shape of `window.localStorage` the store needs. Without `key`, `length` and `removeItem` the
 * store keeps one key (a store shared by tabs must have them).
 */
export interface LocalStorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem?(key: string): void
  key?(index: number): string | null
  readonly length?: number
}

export interface LocalStorageOptions {
  /** This tab's id. @default a random one per page load */
  tabId?: string
  /** A tab silent this long (no write, no heartbeat) is taken for closed. @default 120000 */
  leaseMs?: number
  now?: () => number
  /** Where `pagehide`/`pageshow` are heard. @default globalThis */
  win?: { addEventListener?(type: string, listener: () => void): void }
}

/**
 * Browser store on `localStorage` (synchronous, about 5 MB per origin). A quota error is thrown to
 * the queue, which keeps the events in memory and tries again on the next change.
 *
 * Every tab of the origin shares `localStorage`, so each keeps its queue under its own key
 * (`<key>:tab:<tabId>`) and a heartbeat (`<key>:beat:<tabId>`, refreshed by every write and every
 * `leaseMs / 4`; `pagehide` releases it at once). Two tabs never write over each other's events. A
 * tab starting takes over the queues of tabs silent for `leaseMs` (closed, crashed, or reloaded), and
 * the single key earlier versions shared: it stores them under its own key first, then removes each
 * one unless its tab wrote it meanwhile. A tab only frozen, not closed, still holds its events and
 * sends them when it wakes: the edge dedupes an event sent by both by its id; none is lost.
 */
export function localStorageStorage(key = 'adc:queue', store: LocalStorageLike = globalThis.localStorage, options: LocalStorageOptions = {}): QueueStorage {
  const { removeItem, key: keyAt } = store
  if (typeof removeItem !== 'function' || typeof keyAt !== 'function' || typeof store.length !== 'number') {
    return { read: async () => store.getItem(key), write: async (snapshot) => store.setItem(key, snapshot) }
  }
  const { leaseMs = 120_000, now = Date.now } = options
  const tabId = options.tabId ?? randomId()
  const tabPrefix = `${key}:tab:`
  const beatPrefix = `${key}:beat:`
  const own = `${tabPrefix}${tabId}`
  const beat = (at = now()) => store.setItem(`${beatPrefix}${tabId}`, String(at))
  /** A heartbeat the quota may refuse: every write and the timer beat again, so a refused one is only late. */
  const tryBeat = (): void => {
    try {
      beat()
    } catch {
      // quota
    }
  }
  let timer: ReturnType<typeof setInterval> | undefined

  function start(): void {
    tryBeat()
    if (timer === undefined && typeof setInterval === 'function') {
      timer = setInterval(tryBeat, Math.max(1000, leaseMs / 4))
      ;(timer as { unref?: () => void }).unref?.()
    }
    const win = options.win ?? (globalThis as LocalStorageOptions['win'])
    // A page going away releases its queue: the next tab to start takes it without waiting the lease.
    win?.addEventListener?.('pagehide', () => beat(0))
    win?.addEventListener?.('pageshow', () => beat())
  }

  /** Queues taken over but not yet stored under this tab's key (quota): removed by the next write. */
  let unreleased: Array<{ key: string; text: string }> = []

  /** Removes queues taken over, each unless its tab wrote it since it was read. */
  function release(taken: ReadonlyArray<{ key: string; text: string }>): void {
    for (const o of taken) {
      if (store.getItem(o.key) !== o.text) continue
      store.removeItem!(o.key)
      if (o.key !== key) store.removeItem!(`${beatPrefix}${o.key.slice(tabPrefix.length)}`)
    }
  }

  /** Queues of tabs silent for the lease, and the key earlier versions shared, with their text as read. */
  function orphans(): Array<{ key: string; text: string }> {
    const keys: string[] = []
    for (let i = 0; i < store.length!; i++) {
      const k = store.key!(i)
      if (k !== null) keys.push(k)
    }
    const found: Array<{ key: string; text: string }> = []
    for (const k of keys) {
      if (k !== key && !(k.startsWith(tabPrefix) && k !== own)) continue
      if (k !== key) {
        const last = Number(store.getItem(`${beatPrefix}${k.slice(tabPrefix.length)}`) ?? 0)
        if (now() - last < leaseMs) continue
      }
      const text = store.getItem(k)
      if (text !== null) found.push({ key: k, text })
    }
    return found
  }

  return {
    async read() {
      if (timer === undefined) start()
      const mine = store.getItem(own)
      const taken = orphans()
      if (taken.length === 0) return mine
      const merged = mergeSnapshots([mine, ...taken.map((o) => o.text)])
      // Stored under this tab's key before any is removed: a tab closing in between loses nothing.
      try {
        if (merged !== null) store.setItem(own, merged)
      } catch {
        // No room for a second copy (quota): the queue holds them all in memory and sends them; each
        // stays under its key until a snapshot of this tab is stored (it then holds what is left of
        // them), and another tab taking one meanwhile sends the same ids, which the edge dedupes.
        unreleased = taken
        return merged
      }
      release(taken)
      return merged
    },
    async write(snapshot) {
      if (EMPTY.test(snapshot)) store.removeItem!(own)
      else store.setItem(own, snapshot)
      if (unreleased.length > 0) {
        const taken = unreleased
        unreleased = []
        release(taken)
      }
      // The snapshot is stored even when the quota refuses the heartbeat.
      tryBeat()
    },
  }
}

/** The queue's snapshot of no event. */
const EMPTY = /^\{"v":1,"events":\[\]\}$/

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto
  return c?.randomUUID?.() ?? `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`
}

/** The shape of React Native's `@react-native-async-storage/async-storage` the store needs. */
export interface AsyncStorageLike {
  getItem(key: string): Promise<string | null>
  setItem(key: string, value: string): Promise<void>
}

/** React Native store: pass `AsyncStorage` (or any store with the same two methods, e.g. MMKV wrapped). */
export function asyncStorageStorage(store: AsyncStorageLike, key = 'adc:queue'): QueueStorage {
  return {
    read: () => store.getItem(key),
    write: (snapshot) => store.setItem(key, snapshot),
  }
}
