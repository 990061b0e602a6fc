package dev.adc.sdk

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue

class UnitsTest {
    @Test
    fun backoffIsFullJitterUnderAnExponentialCeiling() {
        val b = Backoff(baseMs = 1000, maxMs = 300_000)
        assertEquals(0, b.delay(0) { 0.0 })
        assertEquals(999, b.delay(0) { 0.999999 })
        assertEquals(7999, b.delay(3) { 0.999999 })
        assertEquals(299_999, b.delay(40) { 0.999999 })
        assertEquals(4000, b.delay(3) { 0.5 })
    }

    @Test
    fun retryAfterIsNeverShortenedAndGetsJitter() {
        val b = Backoff(baseMs = 1000, maxMs = 300_000)
        assertEquals(5000, b.next(7, 5000) { 0.0 })
        assertEquals(5999, b.next(0, 5000) { 0.999999 })
        assertEquals(300_000, b.next(0, 10_000_000) { 0.0 })
    }

    @Test
    fun retryAfterHeaderParses() {
        assertEquals(120_000, Backoff.retryAfterMs(" 120 ", 0))
        assertEquals(2000, Backoff.retryAfterMs("Thu, 01 Jan 1970 00:00:03 GMT", 1000))
        assertEquals(0, Backoff.retryAfterMs("Thu, 01 Jan 1970 00:00:03 GMT", 9000))
        assertNull(Backoff.retryAfterMs("soon", 0))
        assertNull(Backoff.retryAfterMs(null, 0))
        assertNull(Backoff.retryAfterMs("-5", 0))
    }

    private fun ev(type: EventType, i: Int, pad: Int = 0) =
        QueuedEvent(type, "id$i", "{\"eventId\":\"id$i\",\"p\":\"${"x".repeat(pad)}\"}")

    @Test
    fun batchesStayWithinTheEdgeLimits() {
        val events = (0 until 1203).map { ev(if (it % 3 == 1) EventType.CLICK else EventType.IMPRESSION, it) }
        val plan = planBatches(events)
        assertTrue(plan.oversized.isEmpty())
        assertEquals(1203, plan.batches.sumOf { it.events.size })
        assertTrue(plan.batches.all { it.events.size <= 500 && it.events.all { e -> e.type == it.type } })
        assertEquals(listOf(500, 302, 401), plan.batches.map { it.events.size })
        // Order within a type is kept, and the body is exactly the events' JSON.
        val first = plan.batches[0]
        assertEquals("{\"events\":[${first.events.joinToString(",") { it.json }}]}", first.body.toString(Charsets.UTF_8))
        assertEquals(events.filter { it.type == EventType.IMPRESSION }.take(500), first.events)
    }

    @Test
    fun batchesSplitAtOneMebibyteAndSetAsideAnEventTooLargeForAny() {
        val big = (0 until 5).map { ev(EventType.IMPRESSION, it, 300_000) }
        val huge = ev(EventType.IMPRESSION, 99, 1024 * 1024)
        val plan = planBatches(big + huge)
        assertEquals(listOf(huge), plan.oversized)
        assertEquals(listOf(3, 2), plan.batches.map { it.events.size })
        assertTrue(plan.batches.all { it.body.size <= Limits.MAX_BATCH_BYTES })
        assertEquals(listOf(2, 2, 1), planBatches(big, maxEvents = 2).batches.map { it.events.size })
    }

    @Test
    fun utf8LengthCountsBytes() {
        val s = "aé日🎯"
        assertEquals(s.toByteArray(Charsets.UTF_8).size, utf8Length(s))
        assertEquals(s.toByteArray(Charsets.UTF_8).size, QueuedEvent(EventType.CLICK, "x", s).bytes)
    }

    @Test
    fun ulidsAreMonotonicAndEncodeTheTime() {
        val f = UlidFactory()
        val a = f.next(1_700_000_000_000)
        val b = f.next(1_700_000_000_000)
        val c = f.next(1_699_999_999_000)
        assertTrue(Regex("^[0-9A-HJKMNP-TV-Z]{26}$").matches(a))
        assertTrue(a < b && b < c, "$a $b $c")
        assertEquals("01HF7YAT00", UlidFactory.encode(1_700_000_000_000, ByteArray(10)).take(10))
        assertEquals("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", UlidFactory.encode(0xFFFFFFFFFFFFL, ByteArray(10) { -1 }))
    }

    @Test
    fun userAgentSaysWhatItIs() {
        assertTrue(Regex("^adc-kotlin/\\d+\\.\\d+\\.\\d+ \\([^)]+\\)$").matches(AdcClient.defaultUserAgent()), AdcClient.defaultUserAgent())
    }

    @Test
    fun tokenHelpersBuildUrlsAndRefuseBadPayloads() {
        val key = SigningKey("k1", "s")
        val t = Tokens.mintClickToken("imp_1", "cmp_1", "ad_1", "pub_1", "req_1", "https://a.example/x?y=1", key, nowMs = 1_000_000)
        val ok = Tokens.verify(t, { "s" }, 1000) as TokenCheck.Valid
        assertEquals(1000L + 86_400, ok.payload.exp)
        assertEquals("https://c.example/c/$t", Tokens.clickUrl("https://c.example/", t))
        assertEquals("https://c.example/v1/pixel.gif?t=$t", Tokens.pixelUrl("https://c.example", t))
        kotlin.test.assertFailsWith<IllegalArgumentException> { Tokens.mintClickToken("imp 1", "c", "a", "p", "r", "https://x", key) }
        kotlin.test.assertFailsWith<IllegalArgumentException> { Tokens.mintClickToken("i", "c", "a", "p", "r", "javascript:alert(1)", key) }
        kotlin.test.assertFailsWith<IllegalArgumentException> { Tokens.mint(TokenPayload("i", "c", "a", "p", "r", 5), SigningKey("bad key", "s")) }
    }
}
