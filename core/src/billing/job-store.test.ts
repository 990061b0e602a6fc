import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEmbeddedLog, type EmbeddedLogHandle } from '../log/embedded-log.js'
import { openLocalJobStore, openSharedJobStore, type JobStore } from './job-store.js'
import type { Job } from './jobs.js'

const logger = pino({ level: 'silent' })
let log: EmbeddedLogHandle
const dirs: string[] = []
const stores: JobStore[] = []
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'adc-job-store-'))
  dirs.push(d)
  return d
}
let topicN = 0
const topic = () => `test-billing-jobs-${++topicN}`
async function shared(t: string, dir = tmp()): Promise<JobStore> {
  const s = await openSharedJobStore({ dir, log, logger, topic: t, timeoutMs: 10_000 })
  stores.push(s)
  return s
}
const job = (id: string, over: Partial<Job> = {}): Job => ({
  id, kind: 'billing', status: 'queued', progress: 0, days: ['2026-10-01'], modelVersion: 'current', reason: 'test',
  requestedBy: 'test', createdAt: 1, versions: {}, ...over,
})
async function until<T>(read: () => T, done: (v: T) => boolean, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms
  let v = read()
  while (!done(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20))
    v = read()
  }
  return v
}

beforeAll(async () => {
  log = await createEmbeddedLog({ dir: tmp(), logger, idleWaitMs: 20 })
})

afterAll(async () => {
  for (const s of stores) await s.close()
  await log.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('shared job store', () => {
  it('shows a job written on one replica on the other, with its latest state, queued and running ones as active', async () => {
    const t = topic()
    const [a, b] = [await shared(t), await shared(t)]
    expect((await a.submit(job('01J0000000000000000000000A'))).created).toBe(true)
    await a.submit(job('01J0000000000000000000000B'))
    expect(a.get('01J0000000000000000000000A')?.status).toBe('queued')
    await a.update(job('01J0000000000000000000000A', { status: 'done', progress: 1, versions: { '2026-10-01': 3 } }))
    const seen = await until(() => b.get('01J0000000000000000000000A'), (j) => j?.status === 'done')
    expect(seen?.versions).toEqual({ '2026-10-01': 3 })
    expect(b.list(10).map((j) => j.id)).toEqual(['01J0000000000000000000000B', '01J0000000000000000000000A'])
    expect(b.active().map((j) => j.id)).toEqual(['01J0000000000000000000000B'])
  })

  it('keeps the first of two submits of one id, on every replica, and hands the second submitter that job', async () => {
    const t = topic()
    const [a, b] = [await shared(t), await shared(t)]
    const id = '01J0000000000000000000000C'
    const [x, y] = await Promise.all([a.submit(job(id, { reason: 'from a' })), b.submit(job(id, { reason: 'from b' }))])
    expect([x.created, y.created].filter(Boolean)).toHaveLength(1)
    expect(x.job.reason).toBe(y.job.reason)
    await until(() => a.get(id)?.reason === b.get(id)?.reason, Boolean)
    expect(a.list(10)).toEqual(b.list(10))
    expect(a.list(10)).toHaveLength(1)
  })

  it('rebuilds a view from the topic: a restarted replica, a new one, and one whose view is ahead of a new log', async () => {
    const t = topic()
    const dir = tmp()
    const a = await shared(t, dir)
    await a.submit(job('01J0000000000000000000000D'))
    await a.update(job('01J0000000000000000000000D', { status: 'running', progress: 0.5 }))
    await a.close()
    const again = await shared(t, dir)
    expect(again.get('01J0000000000000000000000D')?.progress).toBe(0.5)
    expect((await shared(t)).active().map((j) => j.id)).toEqual(['01J0000000000000000000000D'])
    await again.close()
    // The same directory on another (empty) topic: the view is ahead of it, so it is rebuilt empty.
    expect((await shared(topic(), dir)).list(10)).toEqual([])
  })

  it('submits the job records a replica kept alone before the shared topic once, and skips a record that is not a job command', async () => {
    const t = topic()
    const dir = tmp()
    const raw = open({ path: dir, compression: false })
    await raw.put('job:01J0000000000000000000000E', job('01J0000000000000000000000E', { status: 'running' }))
    await raw.put('auto:2026-10-01', '01J0000000000000000000000E')
    await raw.close()
    await log.ensureTopic(t, 1, { compacted: true })
    await log.append(t, [{ key: 'garbage', value: 'not json', partition: 0 }])
    const a = await shared(t, dir)
    const b = await shared(t)
    expect(b.get('01J0000000000000000000000E')?.status).toBe('running')
    expect(a.active().map((j) => j.id)).toEqual(['01J0000000000000000000000E'])
    await a.submit(job('01J0000000000000000000000F'))
    expect((await until(() => b.list(10), (l) => l.length === 2)).map((j) => j.id)).toEqual(['01J0000000000000000000000F', '01J0000000000000000000000E'])
  })

  it('accepts the first promote request of a job and refuses a second; the promotion clears it', async () => {
    const t = topic()
    const [a, b] = [await shared(t), await shared(t)]
    const id = '01J0000000000000000000000G'
    await a.submit(job(id, { kind: 'reprocess', status: 'done' }))
    await until(() => b.get(id), Boolean)
    const outcomes = await Promise.all([
      a.requestPromote({ jobId: id, request: 'r1', by: 'x' }),
      b.requestPromote({ jobId: id, request: 'r2', by: 'y' }),
    ])
    expect(outcomes.filter(Boolean)).toHaveLength(1)
    await until(() => a.promoteRequests().length + b.promoteRequests().length, (n) => n === 2)
    expect(a.promoteRequests()).toEqual(b.promoteRequests())
    await a.update(job(id, { kind: 'reprocess', status: 'done', promotedVersions: { '2026-10-01': 2 }, promoteRequest: a.promoteRequests()[0]!.request }))
    expect(a.promoteRequests()).toEqual([])
    expect(await until(() => b.promoteRequests(), (r) => r.length === 0)).toEqual([])
    expect(await b.requestPromote({ jobId: id, request: 'r3', by: 'z' })).toBe(false)
  })
})

describe('local job store', () => {
  it('keeps the first submit of an id and indexes the active jobs of an earlier directory', async () => {
    const dir = tmp()
    const raw = open({ path: dir, compression: false })
    await raw.put('job:01J0000000000000000000000H', job('01J0000000000000000000000H', { status: 'running' }))
    await raw.put('job:01J0000000000000000000000J', job('01J0000000000000000000000J', { status: 'done' }))
    await raw.close()
    const s = openLocalJobStore(dir)
    expect(s.active().map((j) => j.id)).toEqual(['01J0000000000000000000000H'])
    expect((await s.submit(job('01J0000000000000000000000J', { reason: 'again' }))).job.status).toBe('done')
    await s.close()
  })
})
