package dev.adc.sdk

import kotlinx.coroutines.runBlocking
import kotlinx.serialization.json.jsonPrimitive
import java.io.File
import java.net.InetAddress
import java.net.ServerSocket
import java.nio.file.Files
import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicLong
import kotlin.math.abs
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue

class EdgeClockTest {
    private val edge = FakeEdge()
    private val dir: File = Files.createTempDirectory("adc-clock").toFile()
    /** The edge's clock, which real time (and the monotonic clock) follows. */
    private val edgeNow = AtomicLong(1_764_590_400_000)
    /** How far the device clock is from the edge's. */
    private val skew = AtomicLong(0)
    private val rejected = CopyOnWriteArrayList<Dropped>()
    private val clients = ArrayList<AdcClient>()

    @AfterTest
    fun cleanup() {
        clients.forEach { runCatching { it.close() } }
        edge.close()
        dir.deleteRecursively()
    }

    private fun date(ms: Long) = DateTimeFormatter.RFC_1123_DATE_TIME.format(Instant.ofEpochMilli(ms).atZone(ZoneOffset.UTC))

    /** The edge's verdict on each event's ts (at most 5 minutes ahead, at most 24 h old), dated. */
    private fun judging(times: Int = 20) = repeat(times) {
        edge.next { s ->
            val statuses = s.events.map { e ->
                val ts = e.getValue("ts").jsonPrimitive.content.toLong()
                if (ts > edgeNow.get() + 5 * 60_000 || ts < edgeNow.get() - 24 * 3600_000) "\"status\":\"rejected\",\"code\":\"clock_skew\"" else "\"status\":\"accepted\""
            }
            FakeEdge.json(202, "{\"results\":[${statuses.mapIndexed { i, st -> "{\"index\":$i,$st}" }.joinToString(",")}]}", "Date" to date(edgeNow.get()))
        }
    }

    private fun client(store: QueueStore = MemoryQueueStore(), endpoint: String = edge.url, monotonic: Boolean = false) = AdcClient(
        endpoint, "pub_test", Auth.ServerKey("sk_test"),
        AdcOptions(
            store = store, flushAt = 1000, flushBytes = Long.MAX_VALUE, flushIntervalMs = 0, now = { edgeNow.get() + skew.get() }, random = { 0.5 },
            backoff = Backoff(baseMs = 1000, maxMs = 60_000), onRejected = { rejected.add(it) },
            monotonicMs = if (monotonic) ({ edgeNow.get() }) else null,
        ),
    ).also { clients.add(it) }

    private fun imp(i: Int) = Impression(adId = "ad_1", campaignId = "cmp_1", requestId = "req_$i", impressionId = "imp_$i")

    private suspend fun drain(c: AdcClient) {
        repeat(5) {
            val r = c.flush()
            if (r.retryInMs != null) edgeNow.addAndGet(r.retryInMs!!)
            if (r.pending == 0) return
        }
    }

    private fun seenAll(): List<FakeEdge.Seen> = generateSequence { edge.poll(50) }.toList()

    @Test
    fun aRightClockIsNeverCorrectedWhateverTheRoundTrip() {
        for ((sent, rtt) in listOf(1_764_590_400_000L to 0L, 1_764_590_400_999L to 40L, 1_764_590_400_500L to 3_000L)) {
            val clock = EdgeClock({ sent })
            assertTrue(clock.observe(date(sent + rtt / 2), sent, sent + rtt))
            assertEquals(0L, clock.confirmed())
        }
    }

    @Test
    fun aFastClockIsCorrectedWithinTheRoundTripAndNoOffsetBeyondTheBoundIsBelieved() {
        val device = 1_764_590_400_000L
        val clock = EdgeClock({ device })
        val edgeAt = device - 10 * 60_000 + 123
        clock.observe(date(edgeAt + 200), device, device + 400)
        val offset = clock.confirmed()!!
        assertTrue(abs(device + 200 + offset - (edgeAt + 200)) <= 1_400, "offset $offset")
        clock.observe(date(edgeAt + 5_000), device + 4_900, device + 5_100)
        assertEquals(offset, clock.confirmed())

        val other = EdgeClock({ device })
        assertTrue(other.observe(date(device + EdgeClock.MAX_OFFSET_MS + 600_000), device, device))
        assertNull(other.confirmed())
        assertEquals(false, other.observe(null, device, device))
        assertEquals(false, other.observe("yesterday-ish", device, device))
    }

    @Test
    fun aDeviceTenMinutesFastHasItsEventsCorrectedAndDelivered() = runBlocking {
        skew.set(10 * 60_000)
        judging()
        val c = client()
        val first = c.impression(imp(1))
        c.click(Click(adId = "ad_1", campaignId = "cmp_1", requestId = "req_1", impressionId = "imp_1", clickId = "clk_1"))
        drain(c)
        assertEquals(emptyList(), rejected.toList())
        assertEquals(2L, c.stats().delivered)
        val seen = seenAll()
        val imps = seen.filter { it.request.url.encodedPath.endsWith("impressions:batch") }
        val clicks = seen.filter { it.request.url.encodedPath.endsWith("clicks:batch") }
        // The impression's first request was refused as clock_skew and taught the offset; the same
        // event went again with its ts on the edge's clock; the click was corrected before its first send.
        assertEquals(2, imps.size)
        assertEquals(listOf(first), imps[1].ids)
        assertEquals(1, clicks.size)
        // Later events are right at once.
        c.impression(imp(2))
        assertEquals(1, c.flush().delivered)
        val last = edge.take().events.single()
        assertTrue(abs(last.getValue("ts").jsonPrimitive.content.toLong() - edgeNow.get()) < 2_000)
    }

    @Test
    fun aFileQueueStoredBeforeARestartIsCorrectedByTheOffsetTheNextRunLearns() = runBlocking {
        skew.set(30 * 60_000)
        val file = File(dir, "queue.log")
        val dead = ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { "http://127.0.0.1:${it.localPort}" }
        val offline = client(FileQueueStore(file), dead)
        offline.impression(imp(1))
        offline.impression(imp(2))
        offline.close()
        judging()
        val online = client(FileQueueStore(file))
        drain(online)
        assertEquals(emptyList(), rejected.toList())
        assertEquals(2L, online.stats().delivered)
        val last = seenAll().last().events
        assertEquals(listOf(true, true), last.map { abs(it.getValue("ts").jsonPrimitive.content.toLong() - edgeNow.get()) < 5_000 })
    }

    @Test
    fun theCorrectionIsStoredAndSurvivesARestart() = runBlocking {
        skew.set(30 * 60_000)
        val file = File(dir, "queue.log")
        judging(1)
        val c = client(FileQueueStore(file))
        c.impression(imp(1))
        c.flush() // refused as clock_skew: the offset is learnt, the event kept with its ts corrected
        c.close()
        val again = FileQueueStore(file).load().single()
        assertEquals(false, again.tsGuess)
        assertTrue(abs(again.tsOffset!! + 30 * 60_000) < 2_000, "offset ${again.tsOffset}")
        assertEquals(again.deviceTs!! + again.tsOffset!!, kotlinx.serialization.json.Json.parseToJsonElement(again.json).let { (it as kotlinx.serialization.json.JsonObject).getValue("ts").jsonPrimitive.content.toLong() })
    }

    @Test
    fun aRightClockKeepsItsTimestampsAndAnAppTsIsNeverRewritten() = runBlocking {
        judging()
        val c = client()
        c.impression(imp(1))
        val stamped = edgeNow.get()
        drain(c)
        assertEquals(stamped, edge.take().events.single().getValue("ts").jsonPrimitive.content.toLong())
        c.impression(imp(2).copy(ts = edgeNow.get() + 3_600_000))
        drain(c)
        assertEquals(listOf("clock_skew"), rejected.map { it.code })
        assertEquals(1, seenAll().size)
    }

    @Test
    fun aClockSetRightAfterTheOffsetWasLearntDoesNotMoveNewEventsIntoThePast() = runBlocking {
        skew.set(10 * 60_000)
        judging()
        val c = client(monotonic = true)
        c.impression(imp(1))
        drain(c)
        assertEquals(1L, c.stats().delivered)
        skew.set(0) // someone sets the clock right: 10 minutes back
        c.impression(imp(2))
        val made = edgeNow.get()
        drain(c)
        assertEquals(emptyList(), rejected.toList())
        val last = seenAll().last().events.single()
        assertEquals("imp_2", last.getValue("impressionId").jsonPrimitive.content)
        assertTrue(abs(last.getValue("ts").jsonPrimitive.content.toLong() - made) < 2_000)
    }

    @Test
    fun aBodySignedOnAClockAheadIsSignedOnTheEdgeClockOnceCorrectedNotAfterItsStaleTimestamp() = runBlocking {
        // The device clock is 20 minutes ahead; the app gives ts itself, so every resend is the same bytes.
        skew.set(20 * 60_000)
        repeat(10) {
            edge.next { s ->
                val ts = s.header(Signing.TIMESTAMP_HEADER)!!.toLong()
                if (abs(ts - edgeNow.get() / 1000) > 300) FakeEdge.json(401, "{\"error\":{\"code\":\"signature_stale\"}}", "Date" to date(edgeNow.get()))
                else FakeEdge.json(202, "{\"results\":[{\"index\":0,\"status\":\"accepted\"}]}", "Date" to date(edgeNow.get()))
            }
        }
        val c = AdcClient(
            edge.url, "pub_test", Auth.RequestSigning("k1", "secret"),
            AdcOptions(
                flushAt = 1000, flushBytes = Long.MAX_VALUE, flushIntervalMs = 0, now = { edgeNow.get() + skew.get() }, random = { 0.5 },
                backoff = Backoff(baseMs = 1000, maxMs = 60_000), onRejected = { rejected.add(it) },
            ),
        ).also { clients.add(it) }
        c.impression(imp(1).copy(ts = edgeNow.get()))
        drain(c)
        assertEquals(emptyList(), rejected.toList())
        assertEquals(1L, c.stats().delivered)
        assertEquals(2, seenAll().size)
    }
}
