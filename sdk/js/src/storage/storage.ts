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

/** The shape of `window.localStorage` the store needs. */
export interface LocalStorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}

/**
 * Browser store on `localStorage` (synchronous, about 5 MB per origin). A quota error is thrown to
 * the queue, which keeps the events in memory and tries again on the next change.
 */
export function localStorageStorage(key = 'adc:queue', store: LocalStorageLike = globalThis.localStorage): QueueStorage {
  return {
    read: async () => store.getItem(key),
    write: async (snapshot) => store.setItem(key, snapshot),
  }
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
