package dev.adc.sdk

import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.JsonPrimitive
import okhttp3.Interceptor
import okhttp3.OkHttpClient
import java.io.File
import java.util.concurrent.atomic.AtomicInteger

/**
 * A process using the Kotlin SDK, for the conformance suite against the real edge and core
 * (test/e2e/sdk-kotlin-conformance.test.ts). SDK_* variables:
 * - SDK_MODE=produce: queues SDK_EVENTS impressions on the file queue, prints `queued`, flushes;
 *   after the first answer prints `answered` and holds it, so a SIGKILL lands after the edge
 *   stored a batch and before the queue forgot it.
 * - SDK_MODE=resume: flushes what a previous run left.
 * - SDK_MODE=storm: SDK_EVENTS impressions, 20 every 0.4 s, flushed in the background at 20;
 *   prints `answer <ms> <status> <retry-after> <events>` per response.
 * - SDK_MODE=malformed: 30 good impressions without `ua` (the edge judges the SDK's agent) and 4 bad ones.
 * Every mode ends with `done <json stats>`; each drop prints `rejected <eventId> <code>`.
 */
fun main() {
    fun env(name: String): String = System.getenv(name) ?: error("$name is required")
    val mode = env("SDK_MODE")
    val answers = AtomicInteger()
    val out = System.out
    val http = OkHttpClient.Builder().addInterceptor(Interceptor { chain ->
        val at = System.currentTimeMillis()
        val body = okio.Buffer().also { chain.request().body?.writeTo(it) }.readUtf8()
        val events = Regex("\\{\"publisherId\"").findAll(body).count()
        val res = chain.proceed(chain.request())
        synchronized(out) { out.println("answer $at ${res.code} ${res.header("Retry-After") ?: 0} $events"); out.flush() }
        if (mode == "produce" && answers.incrementAndGet() == 1) {
            synchronized(out) { out.println("answered"); out.flush() }
            Thread.sleep(30_000)
        }
        res
    }).build()
    val client = AdcClient(
        env("SDK_ENDPOINT"), env("SDK_PUBLISHER"), Auth.RequestSigning(env("SDK_KEY_ID"), env("SDK_SECRET")),
        AdcOptions(
            store = FileQueueStore(File(env("SDK_QUEUE_FILE"))),
            flushAt = if (mode == "storm") 20 else 1_000_000,
            flushBytes = Long.MAX_VALUE,
            flushIntervalMs = 0,
            maxQueueEvents = 10_000,
            backoff = Backoff(100, 2000),
            defaults = mapOf("channel" to JsonPrimitive("app"), "device" to JsonPrimitive("mobile")),
            onRejected = { d -> synchronized(out) { out.println("rejected ${d.eventId} ${d.code}"); out.flush() } },
            httpClient = http,
        ),
    )
    val campaign = System.getenv("SDK_CAMPAIGN").orEmpty()
    val run = System.getenv("SDK_RUN").orEmpty()
    val ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
    fun imp(i: Int) = Impression(
        adId = "ad_sdk", campaignId = campaign, requestId = "req_${run}_$i", impressionId = "imp_${campaign}_${run}_$i",
        ua = ua, ip = "198.51.${(i / 250) % 250}.${i % 250}",
    )
    val n = System.getenv("SDK_EVENTS")?.toInt() ?: 0
    when (mode) {
        "produce" -> {
            for (i in 0 until n) client.impression(imp(i))
            synchronized(out) { out.println("queued"); out.flush() }
            client.flushBlocking()
        }
        "storm" -> for (i in 0 until n) {
            client.impression(imp(i))
            if (i % 20 == 19) Thread.sleep(400)
        }
        "malformed" -> {
            for (i in 0 until 30) client.impression(imp(i).copy(ua = null))
            for ((name, e) in listOf(
                "badGeo" to imp(100).copy(geo = "usa"),
                "badId" to imp(101).copy(adId = "has spaces"),
                "stale" to imp(102).copy(ts = System.currentTimeMillis() - 25 * 3600_000L),
                "otherPublisher" to imp(103).copy(publisherId = "pub_demo"),
            )) {
                val id = client.impression(e)
                synchronized(out) { out.println("bad $name $id"); out.flush() }
            }
        }
        "resume" -> {}
        else -> error("unknown SDK_MODE $mode")
    }
    runBlocking {
        while (true) {
            val r = client.flush()
            if (r.pending == 0) break
            kotlinx.coroutines.delay(r.retryInMs ?: 50)
        }
    }
    val s = client.stats()
    client.close()
    synchronized(out) { out.println("done {\"delivered\":${s.delivered},\"dropped\":${s.dropped},\"queued\":${s.queued},\"retries\":${s.retries}}"); out.flush() }
    http.dispatcher.executorService.shutdown()
    http.connectionPool.evictAll()
    kotlin.system.exitProcess(0)
}
