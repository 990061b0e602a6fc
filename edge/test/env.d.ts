import type { Env as EdgeEnv } from '../src/env.js'

declare global {
  namespace Cloudflare {
    interface Env extends EdgeEnv {}
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    proxyUrl: string
  }
}
