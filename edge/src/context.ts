import type { Env } from './env.js'
import type { Settings } from './settings.js'
import type { PublisherConfig } from '@adc/schemas'
import type { TenantIndex } from './tenants/tenants.js'

/** How the request proved who it is. */
export type AuthMethod = 'api_key' | 'signature'

/**
 * What the request's credential may send: a `server_key` or a `request_signature` (a signature by a
 * `server`-scope request key, kept on the publisher's servers) anything; a `public_key` (page HTML)
 * or an `app_signature` (a signature by an `app`-scope request key, whose secret ships inside every
 * copy of an app) impressions, and clicks only with a valid `clickToken`, and never names the end
 * user's address; a `token` (pixel, click redirect) the one event its signed token stands for.
 */
export const CREDENTIALS = ['server_key', 'public_key', 'request_signature', 'app_signature', 'token'] as const
export type Credential = (typeof CREDENTIALS)[number]

/**
 * The credentials anyone may hold (the public key in every page, an app-scope request key's secret
 * in every copy of an app, the tokens in every ad's markup): a request with one is the end user's
 * own. The edge keeps the address it observes for it (ingest/envelope.ts), and it spends the client
 * address's share (rate-limit/client-limit.ts).
 */
export const SHARED_CREDENTIALS: ReadonlySet<Credential> = new Set<Credential>(['public_key', 'app_signature', 'token'])

export interface AppVariables {
  settings: Settings
  tenants: TenantIndex
  publisher: PublisherConfig
  authMethod: AuthMethod
  credential: Credential
  rawBody: Uint8Array<ArrayBuffer>
}

export type AppEnv = { Bindings: Env; Variables: AppVariables }
