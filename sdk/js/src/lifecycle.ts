/**
 * A lifecycle hook: calls `flush` when the app is about to go away (page hidden, app sent to the
 * background, process exiting) and returns a function that unsubscribes. `urgent` asks for a
 * transport that outlives the page (sendBeacon / fetch keepalive).
 */
export type Lifecycle = (flush: (urgent: boolean) => void) => () => void

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void
  removeEventListener(type: string, listener: () => void): void
}

/**
 * Browsers: `visibilitychange` to hidden is the last event a page reliably gets on mobile (the
 * Page Lifecycle API guidance), `pagehide` covers desktop unloads; `online` flushes what waited.
 */
export function browserLifecycle(win: EventTargetLike & { document?: EventTargetLike & { visibilityState?: string } } = globalThis as never): Lifecycle {
  return (flush) => {
    const doc = win.document
    const onVisibility = () => {
      if (doc?.visibilityState === 'hidden') flush(true)
    }
    const onHide = () => flush(true)
    const onOnline = () => flush(false)
    doc?.addEventListener('visibilitychange', onVisibility)
    win.addEventListener('pagehide', onHide)
    win.addEventListener('online', onOnline)
    return () => {
      doc?.removeEventListener('visibilitychange', onVisibility)
      win.removeEventListener('pagehide', onHide)
      win.removeEventListener('online', onOnline)
    }
  }
}

/** The part of React Native's `AppState` the hook needs. */
export interface AppStateLike {
  addEventListener(type: 'change', listener: (state: string) => void): { remove(): void }
}

/** React Native: pass `AppState` from 'react-native'; flushes when the app goes to the background. */
export function appStateLifecycle(appState: AppStateLike): Lifecycle {
  return (flush) => {
    const sub = appState.addEventListener('change', (state) => {
      if (state === 'background' || state === 'inactive') flush(false)
    })
    return () => sub.remove()
  }
}
