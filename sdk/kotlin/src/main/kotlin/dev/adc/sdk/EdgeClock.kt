package dev.adc.sdk

import java.time.ZonedDateTime
import java.time.format.DateTimeFormatter
import kotlin.math.abs

/**
 * The edge's clock as this device sees it: the offset is the edge's time less the device's, learnt
 * from the `Date` header of the edge's own answers (a body the edge wrote, never a proxy's page).
 *
 * A `Date` is whole seconds, written somewhere between the request leaving and the answer arriving,
 * so one answer says the offset lies in `[date - receivedAt, date + 999 - sentAt]` (device times).
 * The offset kept is the one already held when it lies in that interval, else the point of the
 * interval nearest to 0: the smallest correction the answer proves. A clock that is right always
 * sees 0 in the interval and is never corrected; a wrong one is corrected to within the round trip
 * plus a second. An offset larger than [MAX_OFFSET_MS] is not believed.
 *
 * With a monotonic clock, a jump of the device clock of more than [JUMP_MS] between two readings
 * makes the offset unconfirmed until the next answer ([confirmed] is then null, and events made
 * meanwhile are corrected by that answer). A clock set back (a fast clock put right) cannot be a
 * sleep, so the offset moves with it; one set forward may be a sleep the monotonic clock did not
 * count, so the offset stays a guess: a ts left ahead is refused as `clock_skew` and corrected by
 * that answer, never silently kept.
 */
internal class EdgeClock(private val now: () -> Long, private val monotonic: (() -> Long)? = null) {
    private var learnt: Long? = null
    private var trusted = false
    private var base: Long? = null

    /** The device clock, ms; notes a jump since the last reading. */
    @Synchronized
    fun deviceNow(): Long {
        val wall = now()
        val mono = monotonic ?: return wall
        val b = wall - mono()
        val jump = base?.let { b - it } ?: 0L
        if (abs(jump) > JUMP_MS) {
            trusted = false
            val held = learnt
            if (jump < 0 && held != null) learnt = held - jump
        }
        base = b
        return wall
    }

    /** The offset (edge less device, ms) when one was learnt and no jump was seen since; else null. */
    @Synchronized
    fun confirmed(): Long? {
        deviceNow()
        return if (trusted) learnt else null
    }

    /** The last offset learnt, 0 before any: the best guess (signing uses it). */
    @Synchronized
    fun offset(): Long = learnt ?: 0L

    /** Learns from an answer sent at [sentAt] and received at [receivedAt] (device ms); true when [date] was a usable HTTP date. */
    @Synchronized
    fun observe(date: String?, sentAt: Long, receivedAt: Long): Boolean {
        val edge = date?.let { runCatching { ZonedDateTime.parse(it.trim(), DateTimeFormatter.RFC_1123_DATE_TIME).toInstant().toEpochMilli() }.getOrNull() }
            ?: return false
        deviceNow()
        val lo = edge - maxOf(sentAt, receivedAt)
        val hi = edge + 999 - minOf(sentAt, receivedAt)
        val held = learnt ?: 0L
        val next = if (held in lo..hi) held else minOf(maxOf(0L, lo), hi)
        if (abs(next) > MAX_OFFSET_MS) return true
        learnt = next
        trusted = true
        return true
    }

    companion object {
        /** An offset beyond this (about a year) is taken for a broken answer, not for the device's clock. */
        const val MAX_OFFSET_MS = 366L * 24 * 3600_000
        /** A change of the device clock against the monotonic clock larger than this between two readings is a jump. */
        const val JUMP_MS = 10_000L
    }
}
