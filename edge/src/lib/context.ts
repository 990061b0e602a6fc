import type { Env } from '../env.js'
import type { Settings } from './settings.js'
import type { PublisherConfig, TenantIndex } from './tenants.js'

/** How the request proved who it is. */
export type AuthMethod = 'api_key' | 'signature'

export interface AppVariables {
  settings: Settings
  tenants: TenantIndex
  publisher: PublisherConfig
  authMethod: AuthMethod
  rawBody: Uint8Array<ArrayBuffer>
}

export type AppEnv = { Bindings: Env; Variables: AppVariables }
