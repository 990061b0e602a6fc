import type { Logger } from 'pino'
import type { ReasonCode } from '@adc/schemas'
import type { TenantStore } from '../tenants/tenant-store.js'

/** What the processor reads of its replica's tenant view. */
export type TenantView = Pick<TenantStore, 'configVersion' | 'catchUp'>

/** How a catch-up before an `unknown_campaign` verdict went (the `outcome` label of `adc_processor_tenant_sync_total`). */
export type TenantSyncOutcome = 'caught_up' | 'behind' | 'version_ahead'

/**
 * The tenant view did not catch up with the tenant topic in time: no campaign verdict is given, the
 * batch fails and is delivered again (the partition shows stalled), so an event the edge accepted for
 * a campaign booked elsewhere is never called unbooked for a view that was only late.
 */
export class TenantViewBehindError extends Error {
  readonly reason = 'tenant_view_behind' satisfies ReasonCode
  constructor(message: string) {
    super(message)
    this.name = 'TenantViewBehindError'
  }
}

export interface TenantSyncOptions {
  tenants: TenantView
  /** Longest one catch-up waits for the view. @default 10_000 */
  timeoutMs?: number
  logger: Logger
  /** Counts each outcome (a metric). */
  count?: (outcome: TenantSyncOutcome) => void
}

/**
 * Makes sure a partition's campaign verdicts are given on a tenant view that holds what the edge
 * knew: an event the edge accepted names the tenant config version it was checked against
 * (`edge.configVersion`), and the campaign was booked there. Replicas apply the tenant topic each at
 * its own pace, so the booking can be written (on another replica, which the edge pulled its config
 * from) and the event read here before this view applied it.
 *
 * Before a campaign is called unbooked (`needs`, then `settle`):
 * - a stamp at or below the view's version: the view holds what the edge checked, the verdict stands;
 * - otherwise (a later stamp, or none: an edge from before stamps) the view catches up with the
 *   tenant topic once per batch: every record of the batch was in the log before the catch-up read
 *   the topic's end, and the edge saw the booking before it sent the event, so the caught-up view
 *   holds it whichever replica it was written on. Then the verdict is given on that view.
 * - the view could not catch up within `timeoutMs`: TenantViewBehindError, logged with reason
 *   `tenant_view_behind`; the batch is retried, nothing past it is committed.
 * - a caught-up view still below the stamp: no change on this log gives that version (a forged or
 *   foreign stamp, a static edge config): the event stays `unknown_campaign`, logged once per batch
 *   with reason `tenant_version_ahead` and counted.
 *
 * Once the view holds a booking it keeps it (campaigns are never deleted nor re-scoped), so a
 * replay of the batch gives the same verdicts.
 */
export interface TenantSync {
  /** A new batch begins: its first record that needs it catches the view up again. */
  newBatch(): void
  /**
   * Called before a record stamped `stamp` (undefined: unstamped) is called `unknown_campaign`:
   * nothing when the verdict can be given on the view as it is, else a promise that settles once
   * the view caught up (look again then); rejects with TenantViewBehindError.
   */
  settle(stamp: number | undefined): Promise<void> | undefined
}

export function createTenantSync(o: TenantSyncOptions): TenantSync {
  const { tenants, logger } = o
  const timeoutMs = o.timeoutMs ?? 10_000
  const count = o.count ?? (() => {})
  /** This batch's catch-up, once started: the view then holds every change written before the batch was read. */
  let caughtUp: Promise<void> | undefined
  let done = false
  let aheadLogged = false

  const ahead = (stamp: number | undefined): stamp is number => stamp !== undefined && tenants.configVersion() < stamp

  function versionAhead(stamp: number): void {
    count('version_ahead')
    if (aheadLogged) return
    aheadLogged = true
    logger.warn({
      reason: 'tenant_version_ahead' satisfies ReasonCode, stamp, viewVersion: tenants.configVersion(),
    }, 'an event names a tenant config version the caught-up tenant view does not reach; its campaign is judged on the view (unknown_campaign)')
  }

  async function catchUp(): Promise<void> {
    const from = tenants.configVersion()
    const t0 = Date.now()
    if (!(await tenants.catchUp(timeoutMs))) {
      count('behind')
      logger.error({
        reason: 'tenant_view_behind' satisfies ReasonCode, timeoutMs, viewVersion: tenants.configVersion(),
      }, 'the tenant view did not catch up with the tenant topic in time; no campaign verdict given, the batch is retried')
      throw new TenantViewBehindError(`the tenant view did not catch up with the tenant topic within ${timeoutMs} ms`)
    }
    done = true
    count('caught_up')
    const to = tenants.configVersion()
    if (to !== from) logger.info({ fromVersion: from, toVersion: to, waitedMs: Date.now() - t0 }, 'tenant view caught up before a campaign verdict')
  }

  return {
    newBatch() {
      caughtUp = undefined
      done = false
      aheadLogged = false
    },
    settle(stamp) {
      // The view holds the config the edge checked the event against: its verdict stands.
      if (stamp !== undefined && !ahead(stamp)) return undefined
      if (done) {
        if (ahead(stamp)) versionAhead(stamp)
        return undefined
      }
      if (caughtUp === undefined) {
        caughtUp = catchUp()
        // A failed catch-up fails the batch; its next attempt (a new batch) tries again.
        caughtUp.catch(() => {})
      }
      return caughtUp.then(() => {
        if (ahead(stamp)) versionAhead(stamp)
      })
    },
  }
}
