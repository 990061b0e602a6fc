/**
 * The one flusher of an isolate-wide batch (edge-stats, dedupe confirms): the first request to
 * claim the slot sleeps `delayMs` in its own `waitUntil`, then takes everything pending and sends
 * it; requests meanwhile only add. A flusher whose request the runtime cancels mid-sleep never
 * releases the slot, so a claim older than `max(1 s, 20 × delayMs)` counts as abandoned and the next
 * request takes over. Two flushers at once are harmless: `take()` empties the pending lists in one
 * step, so each item still leaves in exactly one call.
 */
export class FlushSlot {
  private claimedAt: number | undefined

  /** Claims the slot; false while another live flusher holds it. */
  claim(delayMs: number, now = Date.now()): boolean {
    if (this.claimedAt !== undefined && now - this.claimedAt < Math.max(1000, 20 * delayMs)) return false
    this.claimedAt = now
    return true
  }

  release(): void {
    this.claimedAt = undefined
  }

  /** Claims, sleeps `delayMs` and releases; false (at once) when another flusher holds the slot. */
  async waitTurn(delayMs: number): Promise<boolean> {
    if (!this.claim(delayMs)) return false
    try {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs))
    } finally {
      this.release()
    }
    return true
  }
}
