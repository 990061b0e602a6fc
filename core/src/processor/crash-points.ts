/**
 * Named points in the batch write sequence where the crash tests kill the process:
 * `ADC_CRASH_AT=<point>:<n>` sends SIGKILL to this process the n-th time (default 1st) it reaches
 * `<point>`. Unset, this is a no-op. Points, in order: after_intent, before_sink, mid_sink (after
 * events_raw), after_sink, after_iceberg, after_state, after_commit.
 */
export const CRASH_POINTS = ['after_intent', 'before_sink', 'mid_sink', 'after_sink', 'after_iceberg', 'after_state', 'after_commit'] as const
/** With the state changelog on: after the batch's state changes reached the changelog, before the local state commit. */
export const CHANGELOG_CRASH_POINTS = ['after_changelog'] as const
export type CrashPoint = (typeof CRASH_POINTS)[number] | (typeof CHANGELOG_CRASH_POINTS)[number]

export function crashPointsFromEnv(env: NodeJS.ProcessEnv = process.env): (point: CrashPoint) => void {
  const spec = env.ADC_CRASH_AT
  if (!spec) return () => {}
  const [name, nth] = spec.split(':')
  let remaining = Number(nth ?? '1') || 1
  return (point) => {
    if (point !== name) return
    remaining--
    if (remaining === 0) process.kill(process.pid, 'SIGKILL')
  }
}
