import type { Client } from './client.js'
import type { Lifecycle } from './lifecycle.js'

export { fileStorage } from './storage/file.js'

/**
 * Node: flushes when the event loop empties (`beforeExit`, which may start async work). A process
 * ended by a signal or `process.exit()` cannot wait for the network; with `fileStorage` its queued
 * events are sent by the next run.
 */
export function processLifecycle(proc: NodeJS.Process = process): Lifecycle {
  return (flush) => {
    let fired = false
    const onBeforeExit = () => {
      // beforeExit fires again after the flush's work drains; flush once per quiet period.
      if (fired) return
      fired = true
      flush(false)
    }
    proc.on('beforeExit', onBeforeExit)
    return () => proc.off('beforeExit', onBeforeExit)
  }
}

/** Shuts the client down on SIGTERM/SIGINT before exiting, so a deploy's stop sends what is queued. */
export function shutdownOnSignals(client: Client, signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'], proc: NodeJS.Process = process): () => void {
  const handler = (signal: NodeJS.Signals) => {
    void client.shutdown().finally(() => proc.kill(proc.pid, signal))
    for (const s of signals) proc.off(s, handler)
  }
  for (const s of signals) proc.on(s, handler)
  return () => {
    for (const s of signals) proc.off(s, handler)
  }
}
