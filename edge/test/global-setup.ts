import type { TestProject } from 'vitest/node'
import { startFakeProxy } from './fake-proxy.js'

declare module 'vitest' {
  export interface ProvidedContext {
    proxyUrl: string
  }
}

/** Starts the fake REST proxy on loopback before workerd boots, and hands its URL to the pool. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const proxy = await startFakeProxy()
  project.provide('proxyUrl', proxy.url)
  return () => new Promise<void>((resolve) => proxy.server.close(() => resolve()))
}
