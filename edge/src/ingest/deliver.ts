import type { Env } from '../env.js'
import { commit } from './commit.js'
import { type Prepared } from './prepare.js'
import { sendStats } from './stats-batcher.js'
import type { Settings } from '../settings.js'

/**
 * Delivery for routes that answer at once (beacon, pixel, redirect): dedupe, forward, spool on
 * failure, then the stats record, all inside `waitUntil`. Failures are logged; the Spool is the
 * safety net, and the only loss is when both the proxy and the Spool are down at that moment.
 */
export function deliverLater(ctx: ExecutionContext, env: Env, settings: Settings, prepared: Prepared): void {
  if (prepared.results.length === 0) return
  ctx.waitUntil((async () => {
    const out = prepared.valid.length > 0 ? await commit(prepared, env, settings) : { results: prepared.results, durable: true }
    if (!out.durable) console.error('events could be neither forwarded nor spooled', prepared.ctx.publisher.id, prepared.ctx.source)
    await sendStats(env, settings, prepared.ctx.publisher.id, out.results, prepared.ctx.receivedAt)
  })().catch((err: unknown) => {
    console.error('background delivery failed', err)
  }))
}
