import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { ProducerRecord } from '../log/log.js'
import { CRASH_POINTS, type CrashPoint } from './batch-write.js'
import { testEnvelope, toRecord, trafficMix } from '../testing/events.js'

const CHILD = fileURLToPath(new URL('../testing/crash-child.ts', import.meta.url))

interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  totals?: Record<string, number>
  stderr: string
}

function runChild(env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d))
    child.stderr.on('data', (d: Buffer) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const line = out.trim().split('\n').pop()
      resolve({ code, signal, stderr: err, ...(code === 0 && line ? { totals: JSON.parse(line) as Record<string, number> } : {}) })
    })
  })
}

async function append(root: string, records: ProducerRecord[]): Promise<void> {
  const log = await createEmbeddedLog({ dir: join(root, 'log'), logger: pino({ level: 'silent' }) })
  await log.ensureTopic('ad-events', 2)
  await log.ensureTopic('edge-stats', 1)
  await log.append('ad-events', records)
  await log.close()
}

/**
 * Kills the processor at each named point in turn: before each run a new slice of traffic is
 * appended, the run is killed with SIGKILL the 2nd time it reaches its point, and a final run
 * without a crash finishes. Returns the totals of the final run and what each crash run did.
 */
async function crashSequence(points: readonly CrashPoint[], extraEnv: Record<string, string> = {}, { poisonEvery = 0 } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'adc-crash-'))
  // chDB writes Iceberg only under the working directory.
  const lake = relative(process.cwd(), join(process.cwd(), '.cache', `crash-lake-${process.pid}-${Date.now()}`))
  const slices = points.length + 1
  const { records, expected } = trafficMix(400 * slices, { seed: 7 })
  // Poison: impressions dated past year 9999, which the envelope schema lets through and ClickHouse
  // refuses (DateTime64); each must end as one sink_rejected bad row, whatever the kills.
  let poison = 0
  if (poisonEvery > 0) {
    for (let i = poisonEvery; i < records.length; i += poisonEvery + 1) {
      records.splice(i, 0, toRecord(testEnvelope({ type: 'impression', n: 99_500_000 + poison, impressionId: `imp_poison_${poison}`, ts: 6e15 + poison, receivedAt: Date.UTC(2026, 10, 23, 12, 0, 0) })))
      poison++
    }
  }
  const per = Math.ceil(records.length / slices)
  const kills: Array<{ point: string; signal: string | null; code: number | null; stderr: string }> = []
  try {
    for (let i = 0; i < points.length; i++) {
      await append(root, records.slice(i * per, (i + 1) * per))
      const r = await runChild({ CRASH_ROOT: root, CRASH_LAKE: lake, ADC_CRASH_AT: `${points[i]}:2`, ...extraEnv })
      kills.push({ point: points[i]!, signal: r.signal, code: r.code, stderr: r.stderr.slice(-2000) })
    }
    await append(root, records.slice(points.length * per))
    const final = await runChild({ CRASH_ROOT: root, CRASH_LAKE: lake, ...extraEnv })
    if (!final.totals) throw new Error(`final run failed (${final.code} ${final.signal}): ${final.stderr.slice(-3000)}`)
    return { totals: final.totals, kills, expected, records: records.length, poison }
  } finally {
    rmSync(root, { recursive: true, force: true })
    rmSync(lake, { recursive: true, force: true })
  }
}

describe('crash safety: SIGKILL at every point of the batch write sequence', () => {
  it('after kills at every point and restarts, every distinct event is counted exactly once', async () => {
    const { totals, kills, expected, records } = await crashSequence(CRASH_POINTS)
    for (const k of kills) expect(k, `crash at ${k.point}: ${k.stderr}`).toMatchObject({ signal: 'SIGKILL' })
    expect(totals).toMatchObject({
      impressions: expected.impressions,
      clicks: expected.clicks,
      duplicates: expected.duplicates,
      orphans: 0,
      repeats: 0,
      ivt: 0,
      raw_events: records,
      raw_rows: records,
      lake_rows: records,
      bad_rows: 0,
      committed: records,
    })
  }, 90_000)

  it('with records ClickHouse refuses in every batch, kills at every point (isolation and rebuilt writes included) still count each good event once and each refused one as one bad row', async () => {
    const { totals, kills, expected, records, poison } = await crashSequence(CRASH_POINTS, {}, { poisonEvery: 150 })
    for (const k of kills) expect(k, `crash at ${k.point}: ${k.stderr}`).toMatchObject({ signal: 'SIGKILL' })
    expect(poison).toBeGreaterThan(CRASH_POINTS.length)
    expect(totals).toMatchObject({
      impressions: expected.impressions,
      clicks: expected.clicks,
      duplicates: expected.duplicates,
      raw_events: records - poison,
      raw_rows: records - poison,
      lake_rows: records - poison,
      bad_rows: poison,
      sink_rejected: poison,
      committed: records,
    })
  }, 120_000)

  it('negative control: without the dedup token, a kill between the sink write and the state commit double counts', async () => {
    const { totals, kills, expected } = await crashSequence(['after_sink', 'after_iceberg'], { CRASH_NO_DEDUP: '1' })
    for (const k of kills) expect(k.signal).toBe('SIGKILL')
    // The replayed batches land twice: this is what the token prevents in the test above.
    expect(totals.impressions! + totals.clicks!).toBeGreaterThan(expected.impressions + expected.clicks)
    expect(totals.raw_events!).toBeGreaterThan(0)
  }, 60_000)
})
