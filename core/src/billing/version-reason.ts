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
  const at = reason.indexOf(KEPT_NOTE)
  return at < 0 ? kindOf(reason) : `${kindOf(reason.slice(0, at))}${reason.slice(at)}`
}

/** How jobs.ts starts the note of a close that kept a promoted day's rules. */
const KEPT_NOTE = '; kept the promoted IVT model '

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
