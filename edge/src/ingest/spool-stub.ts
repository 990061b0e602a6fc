import type { Env } from '../env.js'

/** The publisher's Spool Durable Object (the outbox for what the REST proxy did not take). */
export function spoolFor(env: Env, publisherId: string) {
  return env.SPOOL.get(env.SPOOL.idFromName(`pub:${publisherId}`))
}
