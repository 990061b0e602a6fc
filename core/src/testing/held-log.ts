/**
 * Test support: a view of a real `Log` whose consumers' deliveries can be held back, as a replica's
 * consumer that has not polled yet (or is stuck). Appends, offsets and reads go straight to the log;
 * only `onBatch` calls of consumers opened through the view wait while it is held. Imported by tests only.
 */
import type { Log } from '../log/log.js'

export interface HeldLog {
  /** The log as the held replica sees it. */
  readonly log: Log
  /** From now on, batches wait before they reach the consumers opened through `log`. */
  hold(): void
  /** Lets the waiting and later batches through. */
  release(): void
}

export function heldLog(inner: Log): HeldLog {
  let gate: { promise: Promise<void>; open(): void } | undefined
  const log: Log = {
    ensureTopic: (...a) => inner.ensureTopic(...a),
    partitionCount: (...a) => inner.partitionCount(...a),
    append: (...a) => inner.append(...a),
    committedOffsets: (...a) => inner.committedOffsets(...a),
    endOffsets: (...a) => inner.endOffsets(...a),
    readRange: (...a) => inner.readRange(...a),
    truncate: (...a) => inner.truncate(...a),
    close: () => inner.close(),
    consume: (options) => inner.consume({
      ...options,
      onBatch: async (batch, ctx) => {
        while (gate) await gate.promise
        return options.onBatch(batch, ctx)
      },
    }),
  }
  return {
    log,
    hold() {
      if (gate) return
      let open!: () => void
      const promise = new Promise<void>((resolve) => (open = resolve))
      gate = { promise, open }
    },
    release() {
      const g = gate
      gate = undefined
      g?.open()
    },
  }
}
