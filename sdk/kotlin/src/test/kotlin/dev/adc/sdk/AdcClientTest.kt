package dev.adc.sdk

import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.jsonPrimitive
import java.io.File
import java.net.InetAddress
import java.net.ServerSocket
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicLong
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue

class AdcClientTest {
    private val edge = FakeEdge()
    private val dir: File = Files.createTempDirectory("adc-client").toFile()
    private val clock = AtomicLong(1_764_590_400_000)
    private val rejected = CopyOnWriteArrayList<Dropped>()
    private val clients = ArrayList<AdcClient>()
    private val signing = Auth.RequestSigning("rk_test", "request-secret")

    @AfterTest
    fun cleanup() {
        clients.forEach { runCatching { it.close() } }
        edge.close()
        dir.deleteRecursively()
    }

    private fun options(vararg tweak: (AdcOptions) -> AdcOptions): AdcOptions {
        var o = AdcOptions(
            flushAt = 1000, flushBytes = Long.MAX_VALUE, flushIntervalMs = 0, now = { clock.get() }, random = { 0.5 },
            // Long real delays: the retry timers never fire within a test, the injected clock decides.
            backoff = Backoff(baseMs = 10_000, maxMs = 600_000), onRejected = { rejected.add(it) },
        )
        for (t in tweak) o = t(o)
        return o
    }

    private fun client(o: AdcOptions = options(), auth: Auth = signing, endpoint: String = edge.url) =
        AdcClient(endpoint, "pub_test", auth, o).also { clients.add(it) }

    private fun imp(i: Int, ua: String? = null) = Impression(adId = "ad_1", campaignId = "cmp_1", requestId = "req_$i", impressionId = "imp_$i", ua = ua)

    /** A loopback port nothing listens on: connections are refused, as when the device is offline. */
    private fun deadEndpoint(): String = ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { "http://127.0.0.1:${it.localPort}" }

    @Test
    fun signsEachRequestAsTheEdgeChecksItAndSaysWhatItIs() = runBlocking {
        val c = client(options({ it.copy(defaults = mapOf("channel" to JsonPrimitive("app"))) }))
        val id = c.impression(imp(1))
        val r = c.flush()
        assertEquals(FlushResult(1, 0, 0, null), r)
        val seen = edge.take()
        assertEquals("/v1/events/impressions:batch", seen.request.url.encodedPath)
        assertEquals("POST", seen.request.method)
        assertEquals("rk_test", seen.header("X-Adc-Key-Id"))
        val ts = seen.header("X-Adc-Timestamp")!!.toLong()
        assertEquals(clock.get() / 1000, ts)
        assertEquals(Signing.signRequest("request-secret", ts, "POST", "/v1/events/impressions:batch", seen.body), seen.header("X-Adc-Signature"))
        assertTrue(seen.header("User-Agent")!!.startsWith("adc-kotlin/$SDK_VERSION ("), seen.header("User-Agent"))
        assertTrue(seen.header("Content-Type")!!.startsWith("application/json"))
        val e = seen.events.single()
        assertEquals(id, e.getValue("eventId").jsonPrimitive.content)
        assertTrue(Regex("^[0-9A-HJKMNP-TV-Z]{26}$").matches(id))
        assertEquals("pub_test", e.getValue("publisherId").jsonPrimitive.content)
        assertEquals("app", e.getValue("channel").jsonPrimitive.content)
        assertEquals(clock.get(), e.getValue("ts").jsonPrimitive.content.toLong())
    }

    @Test
    fun aServerKeyIsSentAsBearerAndClicksGoToTheirRoute() = runBlocking {
        val c = client(auth = Auth.ServerKey("sk_test"))
        c.click(Click(adId = "ad_1", campaignId = "cmp_1", requestId = "req_1", impressionId = "imp_1", clickId = "clk_1"))
        c.impression(imp(1))
        assertEquals(2, c.flush().delivered)
        val paths = listOf(edge.take(), edge.take()).associateBy { it.request.url.encodedPath }
        assertEquals(setOf("/v1/events/impressions:batch", "/v1/events/clicks:batch"), paths.keys)
        assertEquals("Bearer sk_test", paths.getValue("/v1/events/clicks:batch").header("Authorization"))
        assertNull(paths.getValue("/v1/events/clicks:batch").header("X-Adc-Signature"))
        assertEquals("clk_1", paths.getValue("/v1/events/clicks:batch").events.single().getValue("clickId").jsonPrimitive.content)
    }

    @Test
    fun perEventResultsRemoveTheStoredAndReportTheRejectedWithTheirCode() = runBlocking {
        val c = client()
        val ids = (1..3).map { c.impression(imp(it)) }
        edge.next { FakeEdge.results(202, listOf("\"status\":\"accepted\"", "\"status\":\"duplicate\"", "\"status\":\"rejected\",\"code\":\"unknown_campaign\",\"message\":\"no such campaign\"")) }
        assertEquals(FlushResult(2, 1, 0, null), c.flush())
        assertEquals(listOf(Dropped(ids[2], EventType.IMPRESSION, "unknown_campaign", "no such campaign", 202)), rejected)
        assertEquals(ClientStats(0, 2, 1, 0, 0), c.stats())
        assertEquals(1, edge.requestCount)
    }

    @Test
    fun a503IsRetriedWithTheSameEventsAfterAJitteredBackoffSignedAnew() = runBlocking {
        val c = client()
        (1..3).forEach { c.impression(imp(it)) }
        edge.next { FakeEdge.json(503, "{\"error\":{\"code\":\"upstream_unavailable\"}}") }
        val first = c.flush()
        // Full jitter: random 0.5 of the 10 s base.
        assertEquals(FlushResult(0, 0, 3, 5000), first)
        assertEquals(1L, c.stats().retries)
        // Before the backoff ends nothing is sent.
        clock.addAndGet(4999)
        assertEquals(FlushResult(0, 0, 3, 1), c.flush())
        assertEquals(1, edge.requestCount)
        clock.addAndGet(1)
        assertEquals(FlushResult(3, 0, 0, null), c.flush())
        val a = edge.take()
        val b = edge.take()
        assertEquals(a.body, b.body)
        assertEquals(a.ids, b.ids)
        // Same body within the same second: a later timestamp, so the edge does not see a replay.
        assertTrue(b.header("X-Adc-Timestamp")!!.toLong() > a.header("X-Adc-Timestamp")!!.toLong())
        assertNotEquals(a.header("X-Adc-Signature"), b.header("X-Adc-Signature"))
        assertTrue(rejected.isEmpty())
    }

    @Test
    fun theBackoffGrowsExponentiallyUntilASuccessResetsIt() = runBlocking {
        val c = client(options({ it.copy(random = { 0.999 }) }))
        c.impression(imp(1))
        val waits = (0 until 4).map {
            edge.next { FakeEdge.json(500, "") }
            val r = c.flush()
            clock.addAndGet(r.retryInMs!!)
            r.retryInMs!!
        }
        assertEquals(listOf(9990L, 19980L, 39960L, 79920L), waits)
        assertEquals(1, c.flush().delivered)
        c.impression(imp(2))
        edge.next { FakeEdge.json(500, "") }
        assertEquals(9990L, c.flush().retryInMs)
    }

    @Test
    fun a503WithPerEventResultsRetriesOnlyTheFailedOnes() = runBlocking {
        val c = client()
        val ids = (1..2).map { c.impression(imp(it)) }
        edge.next { FakeEdge.results(503, listOf("\"status\":\"accepted\"", "\"status\":\"failed\",\"code\":\"upstream_unavailable\"")) }
        assertEquals(FlushResult(1, 0, 1, 5000), c.flush())
        clock.addAndGet(5000)
        c.flush()
        edge.take()
        assertEquals(listOf(ids[1]), edge.take().ids)
    }

    @Test
    fun retryAfterIsHonoured() = runBlocking {
        val c = client(options({ it.copy(random = { 0.0 }) }))
        c.impression(imp(1))
        edge.next { FakeEdge.json(429, "{\"error\":{\"code\":\"rate_limited\"}}", "Retry-After" to "30") }
        assertEquals(30_000L, c.flush().retryInMs)
        clock.addAndGet(29_999)
        assertEquals(FlushResult(0, 0, 1, 1), c.flush())
        assertEquals(1, edge.requestCount)
        clock.addAndGet(1)
        assertEquals(1, c.flush().delivered)
        assertEquals(2, edge.requestCount)
    }

    @Test
    fun a429HalvesTheNextBatchAndSuccessesDoubleItBack() = runBlocking {
        val c = client(options({ it.copy(random = { 0.0 }) }))
        val ids = (1..40).map { c.impression(imp(it)) }
        edge.next { FakeEdge.json(429, "{\"error\":{\"code\":\"rate_limited\"}}", "Retry-After" to "30") }
        assertEquals(40, c.flush().pending)
        assertEquals(40, edge.take().events.size)
        assertEquals(20, c.batchEvents)
        clock.addAndGet(30_000)
        edge.next { FakeEdge.json(429, "{\"error\":{\"code\":\"rate_limited\"}}", "Retry-After" to "30") }
        edge.next { FakeEdge.json(429, "{\"error\":{\"code\":\"rate_limited\"}}", "Retry-After" to "30") }
        c.flush()
        assertEquals(20, edge.take().events.size)
        clock.addAndGet(30_000)
        c.flush()
        assertEquals(10, edge.take().events.size)
        assertEquals(5, c.batchEvents)
        clock.addAndGet(30_000)
        assertEquals(FlushResult(40, 0, 0, null), c.flush())
        val sizes = generateSequence { edge.poll(100) }.map { it.events.size }.toList()
        // As in the JS client: a pass keeps the size it planned with; each success doubles the next pass's.
        assertEquals(List(8) { 5 }, sizes)
        assertEquals(Limits.MAX_BATCH_EVENTS, c.batchEvents)
        assertEquals(40L, c.stats().delivered)
        assertTrue(ids.isNotEmpty() && rejected.isEmpty())
    }

    @Test
    fun a413SplitsTheBatchInHalvesAndDropsOnlyAnEventRefusedAlone() = runBlocking {
        val c = client()
        val ids = (0 until 7).map { c.impression(if (it == 3) imp(it).copy(placement = "big") else imp(it)) }
        // A body limit below the SDK's (a proxy in front, an older edge): at most 2 events per body; event 3 never fits.
        repeat(20) {
            edge.next { s ->
                if (s.events.size > 2 || s.body.contains("\"placement\":\"big\"")) FakeEdge.json(413, "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"too big\"}}")
                else FakeEdge.accepted(s)
            }
        }
        assertEquals(FlushResult(6, 1, 0, null), c.flush())
        assertEquals(listOf(Dropped(ids[3], EventType.IMPRESSION, "payload_too_large", "too big", 413)), rejected)
        assertEquals(0L, c.stats().retries)
    }

    @Test
    fun aSignatureStaleAnswerIsSignedAgainOnTheEdgeClockFromItsDateHeader() = runBlocking {
        val c = client()
        c.impression(imp(1))
        // The device clock is 20 minutes behind the edge's.
        val edgeNow = clock.get() + 20 * 60_000
        val date = java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME.format(java.time.Instant.ofEpochMilli(edgeNow).atZone(java.time.ZoneOffset.UTC))
        edge.next { FakeEdge.json(401, "{\"error\":{\"code\":\"signature_stale\"}}", "Date" to date) }
        val r = c.flush()
        assertEquals(1, r.pending)
        assertTrue(rejected.isEmpty(), rejected.toString())
        clock.addAndGet(r.retryInMs!!)
        assertEquals(1, c.flush().delivered)
        edge.take()
        val ts = edge.take().header("X-Adc-Timestamp")!!.toLong()
        assertTrue(kotlin.math.abs(ts - (edgeNow + r.retryInMs!!) / 1000) <= 1, "signed at $ts")
        // Without a Date header the events wait for a backoff instead of being dropped.
        c.impression(imp(2))
        edge.next { FakeEdge.json(401, "{\"error\":{\"code\":\"signature_stale\"}}") }
        assertEquals(1, c.flush().pending)
        assertTrue(rejected.isEmpty(), rejected.toString())
    }

    @Test
    fun wholeRequestRefusalsAreNotRetried() = runBlocking {
        val c = client()
        val ids = (1..2).map { c.impression(imp(it)) }
        edge.next { FakeEdge.json(400, "{\"error\":{\"code\":\"invalid_batch\",\"message\":\"bad\"}}") }
        assertEquals(FlushResult(0, 2, 0, null), c.flush())
        assertEquals(ids.map { Dropped(it, EventType.IMPRESSION, "invalid_batch", "bad", 400) }, rejected)
        for (status in listOf(401, 403, 413, 422)) {
            rejected.clear()
            val id = c.impression(imp(status))
            edge.next { FakeEdge.json(status, "") }
            assertEquals(FlushResult(0, 1, 0, null), c.flush(), "status $status")
            assertEquals(listOf(Dropped(id, EventType.IMPRESSION, "http_$status", null, status)), rejected)
        }
        assertEquals(0L, c.stats().retries)
        assertEquals(5, edge.requestCount)
    }

    @Test
    fun aReplayedSignatureIsSignedAnewAndResent() = runBlocking {
        val c = client()
        c.impression(imp(1))
        edge.next { FakeEdge.json(401, "{\"error\":{\"code\":\"signature_replayed\"}}") }
        val r = c.flush()
        assertEquals(1, r.pending)
        assertTrue(r.retryInMs!! >= 1000)
        assertTrue(rejected.isEmpty())
    }

    @Test
    fun networkErrorsKeepTheEventsAndTheyAreSentAfterARestart() = runBlocking {
        val file = File(dir, "queue.log")
        val offline = client(options({ it.copy(store = FileQueueStore(file)) }), endpoint = deadEndpoint())
        val ids = (1..3).map { offline.impression(imp(it)) }
        val r = offline.flush()
        assertEquals(3, r.pending)
        assertEquals(1L, offline.stats().retries)
        offline.close()
        // The app restarts online: the same events, with the same ids, reach the edge once.
        val online = client(options({ it.copy(store = FileQueueStore(file)) }))
        assertEquals(3, online.stats().queued)
        assertEquals(FlushResult(3, 0, 0, null), online.flush())
        assertEquals(ids, edge.take().ids)
        online.close()
        assertEquals(0, client(options({ it.copy(store = FileQueueStore(file)) })).stats().queued)
    }

    @Test
    fun theQueueCapShedsTheOldestAndSaysSo() = runBlocking {
        val c = client(options({ it.copy(maxQueueEvents = 3) }))
        val ids = (1..5).map { c.impression(imp(it)) }
        assertEquals(listOf("queue_full", "queue_full"), rejected.map { it.code })
        assertEquals(ids.take(2), rejected.map { it.eventId })
        assertEquals(ClientStats(3, 0, 2, 2, 0), c.stats())
        c.flush()
        assertEquals(ids.drop(2), edge.take().ids)
    }

    @Test
    fun reachingFlushAtSendsInTheBackground() {
        val c = client(options({ it.copy(flushAt = 5) }))
        val ids = (1..5).map { c.impression(imp(it)) }
        assertEquals(ids, edge.take().ids)
    }

    @Test
    fun reachingFlushBytesSendsInTheBackground() {
        val c = client(options({ it.copy(flushBytes = 1000) }))
        val big = "x".repeat(600)
        c.impression(imp(1, ua = big))
        assertNull(edge.poll(200))
        c.impression(imp(2, ua = big))
        assertEquals(2, edge.take().events.size)
    }

    @Test
    fun theIntervalFlushes() {
        val c = client(options({ it.copy(flushIntervalMs = 100) }))
        val id = c.impression(imp(1))
        assertEquals(listOf(id), edge.take(3000).ids)
    }

    @Test
    fun goingToTheBackgroundFlushes() {
        val hook = AppBackgroundLifecycle()
        val c = client(options({ it.copy(lifecycle = listOf(hook)) }))
        val id = c.impression(imp(1))
        assertNull(edge.poll(200))
        hook.background()
        assertEquals(listOf(id), edge.take().ids)
        c.close()
        // Unsubscribed on shutdown.
        hook.background()
        assertNull(edge.poll(200))
    }

    @Test
    fun consentOffWithholdsClientFacts() = runBlocking {
        val c = client()
        c.setConsent(false)
        c.impression(imp(1, ua = "Mozilla/5.0").copy(userKey = "u1", ip = "198.51.100.1", geo = "DE"))
        c.flush()
        val e = edge.take().events.single()
        assertEquals("false", e.getValue("consent").jsonPrimitive.content)
        assertFalse("ua" in e || "ip" in e || "userKey" in e, e.toString())
        assertEquals("DE", e.getValue("geo").jsonPrimitive.content)
    }

    @Test
    fun anEventTooLargeForAnyBodyIsDropped() = runBlocking {
        val c = client()
        val id = c.impression(imp(1).copy(extra = mapOf("note" to JsonPrimitive("x".repeat(Limits.MAX_BATCH_BYTES)))))
        val ok = c.impression(imp(2))
        assertEquals(FlushResult(1, 1, 0, null), c.flush())
        assertEquals(listOf(id), rejected.filter { it.code == "event_too_large" }.map { it.eventId })
        assertEquals(listOf(ok), edge.take().ids)
    }

    @Test
    fun shutdownFlushesAndRefusesNewEvents() {
        val c = client()
        val id = c.impression(imp(1))
        c.close()
        assertEquals(listOf(id), edge.take().ids)
        kotlin.test.assertFailsWith<IllegalStateException> { c.impression(imp(2)) }
    }

    @Test
    fun anEventIdGivenByTheAppIsKept() = runBlocking {
        val c = client()
        assertEquals("01JD0000000000000000000001", c.impression(imp(1).copy(eventId = "01JD0000000000000000000001", ts = 5)))
        c.flush()
        val e = edge.take().events.single()
        assertEquals("01JD0000000000000000000001", e.getValue("eventId").jsonPrimitive.content)
        assertEquals("5", e.getValue("ts").jsonPrimitive.content)
        delay(1)
    }
}
