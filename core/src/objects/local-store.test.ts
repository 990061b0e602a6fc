import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runObjectStoreContract } from '../testing/object-store.contract.js'
import { createLocalObjectStore } from './local-store.js'
import { tempDirs } from '../testing/temp-dirs.js'

const dirs = tempDirs('adc-objects-')
const tmp = dirs.make
afterAll(() => {
  dirs.removeAll()
})

runObjectStoreContract({ name: 'local directory', newStore: async () => createLocalObjectStore({ root: tmp() }) })

describe('local object store', () => {
  it('publishes by rename: a file being written is neither listed nor read, and no temporary file is left', async () => {
    const root = tmp()
    const store = createLocalObjectStore({ root })
    await store.put('d/v1/a.csv', Buffer.from('a'))
    // What a writer in the middle of a put leaves beside its target.
    writeFileSync(join(root, 'd/v1/b.csv.tmp-123-abcd'), 'half')
    expect((await store.list('d/')).map((o) => o.key)).toEqual(['d/v1/a.csv'])
    expect(await store.get('d/v1/b.csv')).toBeUndefined()
    await store.put('d/v1/b.csv', Buffer.from('whole'))
    expect(readdirSync(join(root, 'd/v1')).filter((f) => f.startsWith('b.csv')).sort()).toEqual(['b.csv', 'b.csv.tmp-123-abcd'])
  })

  it('signs no URLs: core serves local files itself', () => {
    expect(createLocalObjectStore({ root: tmp() }).signedUrl('a.csv', 60)).toBeUndefined()
  })
})
