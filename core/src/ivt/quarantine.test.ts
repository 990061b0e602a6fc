import { describe, expect, it } from 'vitest'
import { useScratchEngine } from '../testing/scratch-engine.js'
import { QUARANTINE_ABOVE, RULE_SCORES, quarantines } from './rules.js'

/**
 * The stream quarantines on a score it computes as a float64; the billing job's final join decides
 * on the score events_raw stored, a Float32 (billing/final-join.ts). Both must draw the line at the
 * same place for every score, or an event bills in one and not in the other.
 */
const engine = useScratchEngine('adc-quarantine-')

/** Scores around the line: 0.8 itself and the float64 and Float32 neighbours either side. */
const NEAR = [0.8, 0.7999999999999999, 0.8000000000000002, 0.79999998, 0.7999999821186066, 0.79999999, 0.80000001, Math.fround(0.8), 0.8000000119209291, 0.80000002, 0.7999999523162842, 0.85, 0.9, 1, 0]

describe('quarantine line', () => {
  it('quarantines exactly the scores the billing job quarantines from the stored Float32', async () => {
    await engine.client.command({ query: 'CREATE TABLE scores (i UInt32, ivt_score Float32) ENGINE = Memory' })
    const scores = [...NEAR, ...Object.values(RULE_SCORES)]
    await engine.client.insert({ table: 'scores', values: scores.map((ivt_score, i) => ({ i, ivt_score })), format: 'JSONEachRow' })
    const rs = await engine.client.query({ query: `SELECT i, ivt_score > toFloat32(${QUARANTINE_ABOVE}) AS q FROM scores ORDER BY i`, format: 'JSONEachRow' })
    const sql = (await rs.json<{ i: number; q: number }>()).map((r) => Number(r.q) === 1)
    expect(scores.map((s) => quarantines(s))).toEqual(sql)
    // The line is "above 0.8": 0.8 itself bills, in both.
    expect(quarantines(0.8)).toBe(false)
    expect(quarantines(0.85)).toBe(true)
  })
})
