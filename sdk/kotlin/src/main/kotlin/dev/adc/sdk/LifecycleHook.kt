package dev.adc.sdk

/**
 * A lifecycle hook: calls `flush` when the app is about to go away (sent to the background, the
 * process exiting) and returns a handle that unsubscribes. On Android, wire the process lifecycle:
 *
 * ```
 * val background = AppBackgroundLifecycle()
 * ProcessLifecycleOwner.get().lifecycle.addObserver(LifecycleEventObserver { _, e ->
 *     if (e == Lifecycle.Event.ON_STOP) background.background()
 * })
 * ```
 */
fun interface LifecycleHook {
    fun subscribe(flush: () -> Unit): AutoCloseable
}

/** A hook the app drives: call [background] when the app goes to the background. */
class AppBackgroundLifecycle : LifecycleHook {
    private val listeners = java.util.concurrent.CopyOnWriteArrayList<() -> Unit>()

    fun background() {
        for (l in listeners) l()
    }

    override fun subscribe(flush: () -> Unit): AutoCloseable {
        listeners.add(flush)
        return AutoCloseable { listeners.remove(flush) }
    }
}
