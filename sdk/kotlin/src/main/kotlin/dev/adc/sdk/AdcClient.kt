package dev.adc.sdk

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.jsonObject
import okhttp3.OkHttpClient
import java.io.Closeable
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicLong
import kotlin.math.abs
import kotlin.math.max
import kotlin.math.min

/** Options, with the JS SDK's defaults. */
data class AdcOptions(
    /** Where queued events live between runs: [FileQueueStore] keeps them across restarts. */
    val store: QueueStore = MemoryQueueStore(),
    /** Flush when this many events wait. */
    val flushAt: Int = 20,
    /** Flush when this many bytes of events wait. */
    val flushBytes: Long = 32L * 1024,
    /** Flush at least this often, ms; 0 turns the timer off. */
    val flushIntervalMs: Long = 30_000,
    /** Cap of the queue; past it the oldest event is shed (`queue_full`). */
    val maxQueueEvents: Int = 1000,
    val backoff: Backoff = Backoff(),
    /** false withholds client facts: events carry `consent: false` and no userKey, ua or ip. */
    val consent: Boolean = true,
    /** Fields added to every event, e.g. `mapOf("channel" to JsonPrimitive("app"), "device" to JsonPrimitive("mobile"))`. */
    val defaults: Map<String, JsonElement> = emptyMap(),
    /** Hooks that flush when the app goes away (see [AppBackgroundLifecycle]). */
    val lifecycle: List<LifecycleHook> = emptyList(),
    /** Told of every event given up: rejected by the edge, refused with its request, or shed by the cap. */
    val onRejected: ((Dropped) -> Unit)? = null,
    /** Told of failures that do not lose events (a store write failed; the event stays in memory). */
    val onError: ((Throwable) -> Unit)? = null,
    /** @default `adc-kotlin/<version> (<os>)` */
    val userAgent: String? = null,
    /** Shares the app's OkHttp connection pool when given. */
    val httpClient: OkHttpClient? = null,
    val dispatcher: CoroutineDispatcher = Dispatchers.IO,
    val now: () -> Long = systemNow,
    /**
     * A monotonic clock, ms, against which a jump of [now] is seen ([EdgeClock]). Default:
     * `System.nanoTime()` when [now] is the system clock, none otherwise.
     */
    val monotonicMs: (() -> Long)? = null,
    val random: () -> Double = Math::random,
)

private val systemNow: () -> Long = { System.currentTimeMillis() }
private val systemMonotonic: () -> Long = { System.nanoTime() / 1_000_000 }

data class FlushResult(
    val delivered: Int,
    val dropped: Int,
    /** Events still queued (waiting for a retry, or added meanwhile). */
    val pending: Int,
    /** When a retry is scheduled, ms from now. */
    val retryInMs: Long? = null,
)

data class ClientStats(
    val queued: Int,
    val delivered: Long,
    val dropped: Long,
    /** Events shed by the queue cap. */
    val shed: Long,
    /** Requests that failed in a retryable way. */
    val retries: Long,
)

/**
 * The collector client: queues impressions and clicks (stored before the call returns), sends them
 * in batches within the edge's limits, and retries what the edge did not store.
 *
 * ```
 * val adc = AdcClient("https://collect.example.com", "pub_demo", Auth.RequestSigning(keyId, secret),
 *     AdcOptions(store = FileQueueStore(File(context.filesDir, "adc-queue.log"))))
 * adc.impression(Impression(adId = "ad_1", campaignId = "cmp_1", requestId = "req_1", impressionId = "imp_1"))
 * ```
 */
class AdcClient(
    endpoint: String,
    private val publisherId: String,
    auth: Auth,
    private val options: AdcOptions = AdcOptions(),
) : Closeable {
    private val now = options.now
    private val ids = UlidFactory()

    // Events' ts and request signatures are on the edge's clock as learnt from its answers.
    private val clock = EdgeClock(now, options.monotonicMs ?: if (options.now === systemNow) systemMonotonic else null)
    private val authorizer = Authorizer(auth) { clock.deviceNow() + clock.offset() }
    private val transport = Transport(
        options.httpClient ?: defaultHttpClient(), endpoint.trimEnd('/'), authorizer, options.userAgent ?: defaultUserAgent(), now, clock,
    )
    private val scope = CoroutineScope(SupervisorJob() + options.dispatcher)
    private val passLock = Mutex()
    private val triggers = Channel<Unit>(Channel.CONFLATED)
    private val delivered = AtomicLong()
    private val dropped = AtomicLong()
    private val retries = AtomicLong()

    @Volatile private var consent = options.consent
    @Volatile private var stopped = false
    @Volatile private var retryAt = 0L
    private var attempt = 0
    private var retryJob: Job? = null

    /** Events per request: the edge's maximum, halved by each 429 and doubled back by each success. */
    @Volatile var batchEvents = Limits.MAX_BATCH_EVENTS
        private set

    private val queue = EventQueue(options.store, options.maxQueueEvents) { e ->
        report(Dropped(e.eventId, e.type, "queue_full", "the queue holds at most ${options.maxQueueEvents} events"))
    }
    private val hooks: List<AutoCloseable>

    init {
        try {
            queue.load()
        } catch (e: Exception) {
            options.onError?.invoke(e)
        }
        scope.launch {
            for (t in triggers) {
                try {
                    flush()
                } catch (e: kotlinx.coroutines.CancellationException) {
                    throw e
                } catch (e: Exception) {
                    options.onError?.invoke(e)
                }
            }
        }
        if (options.flushIntervalMs > 0) {
            scope.launch {
                while (true) {
                    delay(options.flushIntervalMs)
                    triggers.trySend(Unit)
                }
            }
        }
        hooks = options.lifecycle.map { it.subscribe { triggers.trySend(Unit) } }
    }

    /** Queues an impression; returns its eventId once the queue holding it is stored. */
    fun impression(event: Impression): String = enqueue(EventType.IMPRESSION, event.fields())

    /** Queues a click; returns its eventId once the queue holding it is stored. */
    fun click(event: Click): String = enqueue(EventType.CLICK, event.fields())

    fun setConsent(value: Boolean) {
        consent = value
    }

    fun stats(): ClientStats = ClientStats(queue.size, delivered.get(), dropped.get(), queue.shed, retries.get())

    private fun enqueue(type: EventType, fields: Map<String, JsonElement>): String {
        check(!stopped) { "the client is shut down" }
        val event = LinkedHashMap<String, JsonElement>()
        event["publisherId"] = JsonPrimitive(publisherId)
        event.putAll(options.defaults)
        event.putAll(fields)
        val deviceTs = clock.deviceNow()
        val confirmed = clock.confirmed()
        val offset = confirmed ?: clock.offset()
        // Fixed here, once: every retry of this event carries the same id, hence the same idempotency key.
        if (event["eventId"] == null) event["eventId"] = JsonPrimitive(ids.next(deviceTs + offset))
        val stamped = event["ts"] == null
        if (stamped) event["ts"] = JsonPrimitive(deviceTs + offset)
        if (!consent) {
            event["consent"] = JsonPrimitive(false)
            event.remove("userKey")
            event.remove("ua")
            event.remove("ip")
        }
        val id = (event["eventId"] as JsonPrimitive).content
        val queued = if (stamped) QueuedEvent(type, id, JsonObject(event).toString(), deviceTs, offset, confirmed == null)
        else QueuedEvent(type, id, JsonObject(event).toString())
        try {
            queue.push(queued)
        } catch (e: Exception) {
            options.onError?.invoke(e)
        }
        if (queue.size >= options.flushAt || queue.bytes >= options.flushBytes) triggers.trySend(Unit)
        return id
    }

    /** The event with `ts` moved to its device time plus [offset] (only a ts the client stamped). */
    private fun retimed(e: QueuedEvent, offset: Long): QueuedEvent {
        val deviceTs = e.deviceTs ?: return e
        if (offset == e.tsOffset) return QueuedEvent(e.type, e.eventId, e.json, deviceTs, offset, false)
        val fields = LinkedHashMap(Json.parseToJsonElement(e.json).jsonObject)
        fields["ts"] = JsonPrimitive(deviceTs + offset)
        return QueuedEvent(e.type, e.eventId, JsonObject(fields).toString(), deviceTs, offset, false)
    }

    /**
     * Events made before an offset to the edge's clock was confirmed carry the device's guess: once
     * one is, their ts are corrected by it (the offset of the device clock they were made on) before
     * they are sent, and stored so.
     */
    private fun settleTimestamps() {
        val offset = clock.confirmed() ?: return
        val guessed = queue.peek().filter { it.tsGuess && it.deviceTs != null }
        if (guessed.isNotEmpty()) storeRetimed(guessed, offset)
    }

    /** Puts [events] retimed to [offset] ([retimed]) in place of themselves in the queue, and answers them so; a storage failure is reported (`onError`). */
    private fun storeRetimed(events: List<QueuedEvent>, offset: Long): List<QueuedEvent> {
        val updated = events.map { retimed(it, offset) }
        try {
            queue.replace(updated)
        } catch (e: Exception) {
            options.onError?.invoke(e)
        }
        return updated
    }

    /**
     * An event refused as `clock_skew` whose ts the client stamped is kept and retried with its ts on
     * the edge's clock, when the answer (its Date) confirmed an offset the event was not sent with: the
     * device clock was off, or jumped since the offset it carries was learnt. It is retried at most
     * once per offset learnt; otherwise it is dropped as the edge said.
     */
    private fun retimeSkewed(batch: Batch, outcome: SendOutcome): SendOutcome {
        val offset = clock.confirmed() ?: return outcome
        val byId = batch.events.associateBy { it.eventId }
        val fixable = outcome.dropped.filter { d ->
            val e = byId[d.eventId]
            d.code == "clock_skew" && e?.deviceTs != null && abs(offset - (e.tsOffset ?: 0L)) >= 1000
        }
        if (fixable.isEmpty()) return outcome
        val updated = storeRetimed(fixable.map { byId.getValue(it.eventId) }, offset)
        return SendOutcome(outcome.done, outcome.dropped - fixable.toSet(), outcome.retry + updated, outcome.status, outcome.retryAfterMs)
    }

    private fun report(drop: Dropped) {
        dropped.incrementAndGet()
        try {
            options.onRejected?.invoke(drop)
        } catch (e: Exception) {
            options.onError?.invoke(e)
        }
    }

    private fun apply(outcome: SendOutcome) {
        try {
            queue.remove(outcome.done.map { it.eventId } + outcome.dropped.map { it.eventId })
        } catch (e: Exception) {
            options.onError?.invoke(e)
        }
        delivered.addAndGet(outcome.done.size.toLong())
        outcome.dropped.forEach(::report)
    }

    private fun scheduleRetry(retryAfterMs: Long?): Long {
        val wait = options.backoff.next(attempt, retryAfterMs, options.random)
        attempt++
        retries.incrementAndGet()
        retryAt = now() + wait
        retryJob?.cancel()
        if (!stopped) {
            retryJob = scope.launch {
                delay(wait)
                triggers.trySend(Unit)
            }
        }
        return wait
    }

    /** Sends what is queued now, one pass at a time (unless a retry is pending: the server's Retry-After is honoured). */
    suspend fun flush(): FlushResult = passLock.withLock { flushOnce() }

    /** [flush] for callers outside coroutines (Java, a worker thread); blocks the calling thread. */
    fun flushBlocking(): FlushResult = runBlocking(options.dispatcher) { flush() }

    private suspend fun flushOnce(): FlushResult {
        val wait = retryAt - now()
        if (wait > 0) return FlushResult(0, 0, queue.size, wait)
        var sent = 0
        var lost = 0
        var retryIn: Long? = null
        settleTimestamps()
        val plan = planBatches(queue.peek(), Limits.MAX_BATCH_BYTES, batchEvents)
        if (plan.oversized.isNotEmpty()) {
            apply(SendOutcome(emptyList(), plan.oversized.map {
                Dropped(it.eventId, it.type, "event_too_large", "one event exceeds the ${Limits.MAX_BATCH_BYTES}-byte body limit")
            }, emptyList(), 0))
            lost += plan.oversized.size
        }
        for (batch in plan.batches) {
            val outcome = retimeSkewed(batch, send(batch))
            apply(outcome)
            sent += outcome.done.size
            lost += outcome.dropped.size
            if (outcome.retry.isNotEmpty()) {
                // The edge takes or refuses a request whole against the publisher's event budget: a batch
                // larger than the bucket's burst would be refused forever, so a 429 halves the next batches.
                if (outcome.status == 429) batchEvents = max(1, batch.events.size / 2)
                retryIn = scheduleRetry(outcome.retryAfterMs)
                break
            }
            attempt = 0
            batchEvents = min(Limits.MAX_BATCH_EVENTS, batchEvents * 2)
        }
        return FlushResult(sent, lost, queue.size, retryIn)
    }

    /**
     * Sends one batch. A 413 (a proxy in front of the edge, or an edge, with a lower body limit than
     * the SDK plans for) says nothing about the events: the batch is split in halves and each sent on
     * its own, so only an event refused alone is dropped. A half that must be retried stops the pass,
     * and the halves not sent yet are retried with it.
     */
    private suspend fun send(batch: Batch): SendOutcome {
        val outcome = transport.send(batch)
        if (outcome.status != 413 || batch.events.size < 2) return outcome
        val half = (batch.events.size + 1) / 2
        val done = ArrayList<QueuedEvent>()
        val lost = ArrayList<Dropped>()
        val retry = ArrayList<QueuedEvent>()
        var status = outcome.status
        var retryAfterMs: Long? = null
        for (part in listOf(batch.events.subList(0, half), batch.events.subList(half, batch.events.size))) {
            if (retry.isNotEmpty()) {
                retry.addAll(part)
                continue
            }
            val sub = send(batchOf(batch.type, part.toList()))
            done.addAll(sub.done)
            lost.addAll(sub.dropped)
            retry.addAll(sub.retry)
            status = sub.status
            if (sub.retryAfterMs != null) retryAfterMs = sub.retryAfterMs
        }
        return SendOutcome(done, lost, retry, status, retryAfterMs)
    }

    /** Flushes once more, then stops timers and hooks; queued events stay in the store for the next run. */
    suspend fun shutdown() {
        if (stopped) return
        stopped = true
        hooks.forEach { runCatching { it.close() } }
        triggers.close()
        try {
            flush()
        } catch (e: Exception) {
            options.onError?.invoke(e)
        }
        scope.cancel()
        queue.close()
    }

    /** [shutdown], blocking. */
    override fun close() = runBlocking { shutdown() }

    companion object {
        /**
         * `adc-kotlin/<version> (<os>)`: the SDK says what it is, in a shape bot lists accept (they
         * flag a bare `name/version`, and agents naming bare HTTP libraries such as okhttp).
         */
        fun defaultUserAgent(): String {
            val android = System.getProperty("java.vendor").orEmpty().contains("Android", ignoreCase = true) ||
                System.getProperty("java.vm.vendor").orEmpty().contains("Android", ignoreCase = true)
            val os = if (android) "Android" else System.getProperty("os.name") ?: "jvm"
            val arch = System.getProperty("os.arch").orEmpty()
            return "adc-kotlin/$SDK_VERSION (${"$os $arch".trim()})"
        }

        private fun defaultHttpClient(): OkHttpClient = OkHttpClient.Builder()
            .connectTimeout(10, TimeUnit.SECONDS)
            .readTimeout(30, TimeUnit.SECONDS)
            .writeTimeout(30, TimeUnit.SECONDS)
            .callTimeout(60, TimeUnit.SECONDS)
            .build()
    }
}
