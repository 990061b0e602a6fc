/**
 * The ObjectStore port's contract suite: the local directory and S3 adapters run the same tests.
 * Imported by tests only.
 */
import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { ObjectStore } from '../objects/object-store.js'

export interface ObjectStoreContractOptions {
  name: string
  /** A store over a fresh, empty place (directory, or bucket prefix). */
  newStore(): Promise<ObjectStore>
}

const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex')

async function drain(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c))
  return Buffer.concat(chunks)
}

export function runObjectStoreContract({ name, newStore }: ObjectStoreContractOptions): void {
  describe(`object store contract: ${name}`, () => {
    it('reads back exactly the bytes it was given, whole, by get, open and head', async () => {
      const store = await newStore()
      const body = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(70_000)])
      await store.put('2026-11-20/v1/advertiser-adv_1.parquet', body)
      expect(sha((await store.get('2026-11-20/v1/advertiser-adv_1.parquet'))!)).toBe(sha(body))
      expect(await store.head('2026-11-20/v1/advertiser-adv_1.parquet')).toEqual({ size: body.length })
      const opened = await store.open('2026-11-20/v1/advertiser-adv_1.parquet')
      expect(opened?.size).toBe(body.length)
      expect(sha(await drain(opened!.body))).toBe(sha(body))
    })

    it('answers undefined for an object that does not exist, under a prefix that exists or not', async () => {
      const store = await newStore()
      await store.put('a/b.csv', Buffer.from('x'))
      expect(await store.get('a/c.csv')).toBeUndefined()
      expect(await store.head('a/c.csv')).toBeUndefined()
      expect(await store.open('nowhere/c.csv')).toBeUndefined()
      expect(await store.get('a')).toBeUndefined()
    })

    it('replaces an object whole on a second put', async () => {
      const store = await newStore()
      await store.put('m.json', Buffer.from('{"version":1,"long":"' + 'x'.repeat(5000) + '"}'))
      await store.put('m.json', Buffer.from('{"version":2}'))
      expect((await store.get('m.json'))!.toString()).toBe('{"version":2}')
      expect(await store.head('m.json')).toEqual({ size: 13 })
    })

    it('lists the objects under a plain string prefix, sorted, with their sizes, and nothing being written', async () => {
      const store = await newStore()
      for (const k of ['d/v2/b.csv', 'd/v10/a.csv', 'd/v1/manifest.json', 'd/v1/a.csv', 'e/v1/a.csv', 'dd/x.csv']) await store.put(k, Buffer.from(k))
      expect(await store.list('d/v1/')).toEqual([{ key: 'd/v1/a.csv', size: 10 }, { key: 'd/v1/manifest.json', size: 18 }])
      expect((await store.list('d/v1')).map((o) => o.key)).toEqual(['d/v1/a.csv', 'd/v1/manifest.json', 'd/v10/a.csv'])
      expect((await store.list('d')).map((o) => o.key)).toEqual(['d/v1/a.csv', 'd/v1/manifest.json', 'd/v10/a.csv', 'd/v2/b.csv', 'dd/x.csv'])
      expect(await store.list('nothing/')).toEqual([])
      expect((await store.list('')).length).toBe(6)
    })

    it('keeps ids with colons, dots, equals signs and dashes in keys as they are', async () => {
      const store = await newStore()
      const key = 'day=2026-11-20/v3/publisher-pub:eu.west_1-x.csv'
      await store.put(key, Buffer.from('ok'))
      expect((await store.get(key))!.toString()).toBe('ok')
      expect((await store.list('day=2026-11-20/')).map((o) => o.key)).toEqual([key])
    })

    it('refuses keys that could leave its place or name nothing', async () => {
      const store = await newStore()
      for (const key of ['../x', 'a/../../x', '/abs', 'a//b', 'a/', '', 'sp ace', 'a/./b', 'ü']) {
        await expect(store.put(key, Buffer.from('x')), key).rejects.toThrow(RangeError)
        await expect(store.get(key), key).rejects.toThrow(RangeError)
      }
    })
  })
}
