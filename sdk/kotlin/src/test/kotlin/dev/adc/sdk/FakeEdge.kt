package dev.adc.sdk

import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import mockwebserver3.Dispatcher
import mockwebserver3.MockResponse
import mockwebserver3.MockWebServer
import mockwebserver3.RecordedRequest
import java.io.Closeable
import java.net.InetAddress
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * A MockWebServer on loopback answering like the edge's batch routes: every event accepted unless
 * a scripted answer is queued for the next request.
 */
class FakeEdge : Dispatcher(), Closeable {
    class Seen(val request: RecordedRequest) {
        val body: String = request.body?.utf8().orEmpty()
        val events: List<JsonObject> = if (body.isEmpty()) emptyList() else Json.parseToJsonElement(body).jsonObject.getValue("events").jsonArray.map { it.jsonObject }
        val ids: List<String> get() = events.map { it.getValue("eventId").jsonPrimitive.content }
        fun header(name: String): String? = request.headers[name]
    }

    private val seen = LinkedBlockingQueue<Seen>()
    private val script = ConcurrentLinkedQueue<(Seen) -> MockResponse>()
    val server = MockWebServer().apply {
        dispatcher = this@FakeEdge
        start(InetAddress.getLoopbackAddress(), 0)
    }
    val url: String get() = server.url("/").toString().trimEnd('/')
    val requestCount: Int get() = server.requestCount

    /** The answer to the next request (then back to accepting everything). */
    fun next(answer: (Seen) -> MockResponse) {
        script.add(answer)
    }

    fun take(timeoutMs: Long = 5_000): Seen = seen.poll(timeoutMs, TimeUnit.MILLISECONDS) ?: error("no request within $timeoutMs ms")

    fun poll(timeoutMs: Long): Seen? = seen.poll(timeoutMs, TimeUnit.MILLISECONDS)

    override fun dispatch(request: RecordedRequest): MockResponse {
        val s = Seen(request)
        seen.add(s)
        return (script.poll() ?: ::accepted)(s)
    }

    override fun close() = server.close()

    companion object {
        fun json(code: Int, body: String, vararg headers: Pair<String, String>): MockResponse {
            val b = MockResponse.Builder().code(code).addHeader("Content-Type", "application/json").body(body)
            for ((k, v) in headers) b.addHeader(k, v)
            return b.build()
        }

        fun results(code: Int, statuses: List<String>): MockResponse =
            json(code, "{\"results\":[${statuses.mapIndexed { i, s -> "{\"index\":$i,$s}" }.joinToString(",")}]}")

        fun accepted(s: Seen): MockResponse = results(202, s.events.map { "\"status\":\"accepted\"" })
    }
}
