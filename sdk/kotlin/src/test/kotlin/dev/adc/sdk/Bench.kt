package dev.adc.sdk

import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.JsonPrimitive
import mockwebserver3.Dispatcher
import mockwebserver3.MockResponse
import mockwebserver3.MockWebServer
import mockwebserver3.RecordedRequest
import java.io.File
import java.lang.management.ManagementFactory
import java.net.InetAddress
import java.nio.file.Files
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

/**
 * Events per second one client hands to a loopback MockWebServer that accepts every event, and
 * bytes per event on the wire. `sdk/kotlin/bench.sh` runs it (BENCH_SDK_EVENTS=20000 by default).
 */
private class Accepting : Dispatcher() {
    val requests = AtomicLong()
    val bodyBytes = AtomicLong()
    val headerBytes = AtomicLong()
    private val answers = ConcurrentHashMap<Int, MockResponse>()

    override fun dispatch(request: RecordedRequest): MockResponse {
        val body = request.body?.utf8().orEmpty()
        requests.incrementAndGet()
        bodyBytes.addAndGet(request.bodySize)
        headerBytes.addAndGet(request.requestLine.length + 2L + request.headers.sumOf { it.first.length + it.second.length + 4L })
        var n = 0
        var i = body.indexOf("{\"publisherId\"")
        while (i >= 0) {
            n++
            i = body.indexOf("{\"publisherId\"", i + 1)
        }
        return answers.getOrPut(n) {
            MockResponse.Builder().code(202).addHeader("Content-Type", "application/json")
                .body("{\"accepted\":$n,\"results\":[${(0 until n).joinToString(",") { "{\"index\":$it,\"status\":\"accepted\"}" }}]}").build()
        }
    }
}

private fun impression(i: Int) = Impression(
    adId = "ad_1", campaignId = "cmp_bench", requestId = "req_$i", impressionId = "imp_bench_$i", placement = "feed_top",
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    ip = "81.${(i shr 8) and 255}.${i and 255}.9",
)

private fun run(name: String, total: Int, store: () -> QueueStore) {
    val accepting = Accepting()
    MockWebServer().use { server ->
        server.dispatcher = accepting
        server.start(InetAddress.getLoopbackAddress(), 0)
        val client = AdcClient(
            server.url("/").toString(), "pub_bench", Auth.RequestSigning("rk_bench", "bench-secret"),
            AdcOptions(
                store = store(), flushIntervalMs = 0, maxQueueEvents = total,
                defaults = mapOf("channel" to JsonPrimitive("app"), "device" to JsonPrimitive("mobile"), "geo" to JsonPrimitive("US")),
                backoff = Backoff(50, 1000),
            ),
        )
        val os = ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean
        val cpu0 = os.processCpuTime
        val t0 = System.nanoTime()
        for (i in 0 until total) client.impression(impression(i))
        runBlocking {
            while (true) {
                val r = client.flush()
                if (r.pending == 0) break
                delay(r.retryInMs ?: 5)
            }
        }
        val seconds = (System.nanoTime() - t0) / 1e9
        val cpu = (os.processCpuTime - cpu0) / 1e9
        val s = client.stats()
        client.close()
        check(s.delivered == total.toLong()) { "delivered ${s.delivered} of $total" }
        println(
            "%-28s %7.0f events/s  %7.0f events/CPU-s (client and server)  %5.1f B body + %.1f B headers per event  %d requests".format(
                name, total / seconds, total / cpu, accepting.bodyBytes.get().toDouble() / total, accepting.headerBytes.get().toDouble() / total, accepting.requests.get(),
            ),
        )
    }
}

fun main() {
    val total = System.getenv("BENCH_SDK_EVENTS")?.toInt() ?: 20_000
    val dir = Files.createTempDirectory("adc-bench").toFile()
    try {
        run("warm-up", total / 4) { MemoryQueueStore() }
        run("memory queue", total) { MemoryQueueStore() }
        run("file queue, no fsync", total) { FileQueueStore(File(dir, "nofsync.log"), fsync = false) }
        run("file queue, fsync per event", total) { FileQueueStore(File(dir, "fsync.log")) }
    } finally {
        dir.deleteRecursively()
    }
}

