import type { PrincipalKind } from '../tenants/tenant-store.js'

/**
 * A snapshot version's reason as a tenant reads it. The stored reason is written for operators: a
 * re-close names how many events of the day (every tenant's) changed, a promotion carries the
 * operator's free text, a manual close the operator's id. An advertiser or publisher sees what kind
 * of version it is and which version it follows, never another tenant's volume or an operator's
 * words; an admin sees the reason as stored.
 */
export function reasonFor(viewer: PrincipalKind, reason: string): string {
  if (viewer === 'admin') return reason
  // A close that kept a promoted model says so after its reason (jobs.ts `dayRules`): system text, kept.
  // Only the note as jobs.ts writes it, at the end: the same words inside an operator's free text
  // (a promotion's reason) are the operator's, and everything after them would be shown.
  const note = KEPT_NOTE.exec(reason)
  return note ? `${kindOf(reason.slice(0, note.index))}${note[0]}` : kindOf(reason)
}

/**
 * The note jobs.ts (`dayRules`) appends to the reason of a close that kept a promoted day's rules:
 * registered versions, a version number, a job id and one of two fixed sentences, nothing free.
 */
const KEPT_NOTE = new RegExp(
  '; kept the promoted IVT model [A-Za-z0-9_.:-]{1,64}( and attribution rules [A-Za-z0-9_.:-]{1,64})? of final v\\d+ \\(job [0-9A-Za-z]{1,32}\\)' +
    '(; that job is gone from the job store, so its attribution rules are unknown: default attribution windows' +
    '|; that job records no attribution rules for the day: default attribution windows)?$',
)

/** The kind of version a stored reason names, without numbers or operators' words. */
function kindOf(reason: string): string {
  // "re-close: 1234 events of the day were received or judged after v2"
  const reclose = /^re-close: \d+ events (of the day were received or judged after v\d+)/.exec(reason)
  if (reclose) return `re-close: events ${reclose[1]}`
  // "promoted reprocess <job> (<model>[, <attribution>]): <operator's reason>"
  const promoted = /^promoted reprocess (\S+) \(([^)]*)\)/.exec(reason)
  if (promoted) return `promoted reprocess ${promoted[1]} (${promoted[2]})`
  if (reason.startsWith('scheduled close (T+1)') || reason.startsWith('close: the watermark passed')) return reason
  return 'close requested by an operator'
}
