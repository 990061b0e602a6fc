import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createQueue } from './queue.js'
import { fileStorage } from './storage/file.js'
import { asyncStorageStorage, localStorageStorage, memoryStorage, type QueueStorage } from './storage/storage.js'
import type { QueuedEvent } from './types.js'

const ev = (i: number): QueuedEvent => ({ type: 'impression', eventId: `id_${i}`, json: `{"i":${i}}`, bytes: `{"i":${i}}`.length })

/** A store that holds writes back until released, counting them. */
function heldStorage() {
  let value: string | null = null
  const writes: string[] = []
  let release: (() => void) | null = null
  const store: QueueStorage = {
    read: async () => value,
    write: (s) => new Promise<void>((resolve) => {
      writes.push(s)
      release = () => {
        value = s
        resolve()
      }
    }),
  }
  return { store, writes, release: () => release?.() }
}

describe('queue', () => {
  it('coalesces writes: a burst while one write is in flight costs one more write, and each push waits for a snapshot holding it', async () => {
    const held = heldStorage()
    const q = createQueue(held.store)
    await q.load()
    const first = q.push([ev(1)])
    await Promise.resolve()
    const later = [q.push([ev(2)]), q.push([ev(3)]), q.push([ev(4)])]
    let laterDone = false
    void Promise.all(later).then(() => { laterDone = true })
    await new Promise((r) => setTimeout(r, 5))
    expect(held.writes).toHaveLength(1)
    held.release()
    await first
    await new Promise((r) => setTimeout(r, 5))
    expect(laterDone).toBe(false)
    expect(held.writes).toHaveLength(2)
    expect(JSON.parse(held.writes[1]!).events.map((e: QueuedEvent) => e.eventId)).toEqual(['id_1', 'id_2', 'id_3', 'id_4'])
    held.release()
    await Promise.all(later)
  })

  it('sheds the oldest past the cap and counts what it shed', async () => {
    const shed: string[] = []
    const q = createQueue(memoryStorage(), { maxEvents: 3, onShed: (e) => shed.push(e.eventId) })
    await q.load()
    await q.push([ev(1), ev(2), ev(3), ev(4)])
    await q.push([ev(5)])
    expect(q.peek().map((e) => e.eventId)).toEqual(['id_3', 'id_4', 'id_5'])
    expect(shed).toEqual(['id_1', 'id_2'])
    expect(q.shed).toBe(2)
  })

  it('reloads what a previous run stored, minus what was removed', async () => {
    const store = memoryStorage(null)
    const a = createQueue(store)
    await a.load()
    await a.push([ev(1), ev(2), ev(3)])
    await a.remove(['id_2'])
    const b = createQueue(store)
    await b.load()
    expect(b.peek().map((e) => e.eventId)).toEqual(['id_1', 'id_3'])
    expect(b.bytes).toBe(ev(1).bytes + ev(3).bytes)
  })

  it('starts empty from a corrupt snapshot rather than failing', async () => {
    const q = createQueue(memoryStorage('{"v":1,"events":[{"broken'))
    await q.load()
    expect(q.size).toBe(0)
  })
})

describe('storages', () => {
  it('file: writes through a temp file and rename; a torn temp file from a crash is ignored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'adc-sdk-'))
    const path = join(dir, 'q', 'queue.json')
    const store = fileStorage(path)
    expect(await store.read()).toBeNull()
    await store.write('{"v":1,"events":[]}')
    writeFileSync(`${path}.tmp`, '{"v":1,"ev')
    expect(await store.read()).toBe('{"v":1,"events":[]}')
    await store.write('second')
    expect(readFileSync(path, 'utf8')).toBe('second')
  })

  it('localStorage- and AsyncStorage-shaped stores keep one key', async () => {
    const map = new Map<string, string>()
    const sync = localStorageStorage('k', { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v) })
    await sync.write('a')
    expect(await sync.read()).toBe('a')
    const rn = asyncStorageStorage({ getItem: async (k) => map.get(k) ?? null, setItem: async (k, v) => void map.set(k, v) }, 'rn')
    expect(await rn.read()).toBeNull()
    await rn.write('b')
    expect(map.get('rn')).toBe('b')
  })
})
