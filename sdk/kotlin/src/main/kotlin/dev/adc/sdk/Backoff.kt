package dev.adc.sdk

import java.time.ZonedDateTime
import java.time.format.DateTimeFormatter
import kotlin.math.floor
import kotlin.math.min

/** Retry backoff: exponential with full jitter, never sooner than a server's Retry-After. */
data class Backoff(
    /** First retry delay ceiling, ms. */
    val baseMs: Long = 1_000,
    /** Largest delay, ms. */
    val maxMs: Long = 300_000,
) {
    /** A uniform delay in [0, min(max, base * 2^attempt)); `attempt` counts from 0. */
    fun delay(attempt: Int, random: () -> Double): Long {
        val ceiling = min(maxMs.toDouble(), baseMs * Math.pow(2.0, min(attempt, 30).toDouble()))
        return floor(random() * ceiling).toLong()
    }

    /**
     * The wait before the next attempt. With Retry-After: never sooner than the server asked, plus
     * up to `baseMs` of jitter so clients told the same second do not return together.
     */
    fun next(attempt: Int, retryAfterMs: Long?, random: () -> Double): Long {
        if (retryAfterMs == null) return delay(attempt, random)
        return min(retryAfterMs, maxMs) + floor(random() * baseMs).toLong()
    }

    companion object {
        private val DIGITS = Regex("^\\d+$")

        /** `Retry-After` (delay-seconds or an HTTP-date, RFC 9110 section 10.2.3) as ms from `nowMs`; null when absent or unreadable. */
        fun retryAfterMs(header: String?, nowMs: Long): Long? {
            val text = header?.trim().orEmpty()
            if (text.isEmpty()) return null
            if (DIGITS.matches(text)) return text.toBigInteger().min(Long.MAX_VALUE.toBigInteger() / 1000.toBigInteger()).toLong() * 1000
            return try {
                maxOf(0, ZonedDateTime.parse(text, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant().toEpochMilli() - nowMs)
            } catch (e: Exception) {
                null
            }
        }
    }
}
