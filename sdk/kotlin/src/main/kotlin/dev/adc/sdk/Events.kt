package dev.adc.sdk

import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonPrimitive

enum class EventType(val wire: String, internal val path: String) {
    IMPRESSION("impression", "/v1/events/impressions:batch"),
    CLICK("click", "/v1/events/clicks:batch");

    companion object {
        fun of(wire: String): EventType? = entries.firstOrNull { it.wire == wire }
    }
}

/**
 * An impression as the app gives it (schemas/src/events.ts). The client fills in `eventId` (a
 * ULID), `ts` (epoch ms) and `publisherId` when they are null. `extra` carries any other field.
 */
data class Impression(
    val adId: String,
    val campaignId: String,
    val requestId: String,
    val impressionId: String,
    val eventId: String? = null,
    val ts: Long? = null,
    val publisherId: String? = null,
    val userKey: String? = null,
    /** `web`, `app`, `ctv` or `s2s`. */
    val channel: String? = null,
    /** `desktop`, `mobile`, `tablet`, `ctv` or `other`. */
    val device: String? = null,
    val geo: String? = null,
    val placement: String? = null,
    val ua: String? = null,
    val ip: String? = null,
    val viewable: Boolean? = null,
    /** `mrc_50_1s`, `mrc_30_1s`, `mrc_50_2s` or `client`. */
    val viewMethod: String? = null,
    val extra: Map<String, JsonElement> = emptyMap(),
) {
    internal fun fields(): Map<String, JsonElement> = buildFields(
        "eventId" to eventId, "ts" to ts, "publisherId" to publisherId, "adId" to adId, "campaignId" to campaignId,
        "requestId" to requestId, "impressionId" to impressionId, "userKey" to userKey, "channel" to channel,
        "device" to device, "geo" to geo, "placement" to placement, "ua" to ua, "ip" to ip,
        "viewable" to viewable, "viewMethod" to viewMethod, extra = extra,
    )
}

/**
 * A click. `clickToken` is the signed click token the ad server minted ([Tokens.mintClickToken]);
 * clients that hold a server key or sign with a `server`-scope request key may leave it out; a click
 * signed with an `app`-scope request key (the default scope, the key an app ships) without it is
 * rejected (`click_token_required`).
 */
data class Click(
    val adId: String,
    val campaignId: String,
    val requestId: String,
    val impressionId: String,
    val clickId: String,
    val clickToken: String? = null,
    val eventId: String? = null,
    val ts: Long? = null,
    val publisherId: String? = null,
    val userKey: String? = null,
    val channel: String? = null,
    val device: String? = null,
    val geo: String? = null,
    val placement: String? = null,
    val ua: String? = null,
    val ip: String? = null,
    val extra: Map<String, JsonElement> = emptyMap(),
) {
    internal fun fields(): Map<String, JsonElement> = buildFields(
        "eventId" to eventId, "ts" to ts, "publisherId" to publisherId, "adId" to adId, "campaignId" to campaignId,
        "requestId" to requestId, "impressionId" to impressionId, "clickId" to clickId, "clickToken" to clickToken,
        "userKey" to userKey, "channel" to channel, "device" to device, "geo" to geo, "placement" to placement,
        "ua" to ua, "ip" to ip, extra = extra,
    )
}

private fun buildFields(vararg pairs: Pair<String, Any?>, extra: Map<String, JsonElement>): Map<String, JsonElement> {
    val out = LinkedHashMap<String, JsonElement>()
    for ((k, v) in pairs) {
        when (v) {
            null -> {}
            is String -> out[k] = JsonPrimitive(v)
            is Number -> out[k] = JsonPrimitive(v)
            is Boolean -> out[k] = JsonPrimitive(v)
            else -> error("unsupported field type for $k")
        }
    }
    out.putAll(extra)
    return out
}

/**
 * One event as it waits in the queue: its wire JSON is fixed at creation, so every retry is
 * byte-identical (unless its `ts` is corrected to the edge's clock, see [EdgeClock]).
 */
class QueuedEvent(
    val type: EventType,
    val eventId: String,
    val json: String,
    /** The device clock (ms) the client stamped `ts` from; null when the app gave `ts` (the client never changes it). */
    val deviceTs: Long? = null,
    /** The offset to the edge's clock added to [deviceTs] to make `ts`. */
    val tsOffset: Long? = null,
    /** true while [tsOffset] is a guess (none was confirmed when the event was made): the first confirmed offset replaces it before the event is sent. */
    val tsGuess: Boolean = false,
) {
    /** UTF-8 length of [json]. */
    val bytes: Int = utf8Length(json)

    override fun equals(other: Any?): Boolean = other is QueuedEvent && other.eventId == eventId && other.type == type && other.json == json &&
        other.deviceTs == deviceTs && other.tsOffset == tsOffset && other.tsGuess == tsGuess
    override fun hashCode(): Int = eventId.hashCode()
    override fun toString(): String = "QueuedEvent($type, $eventId)"
}

/** Why the client gave up on an event: a code from the reason registry (the edge's or the SDK's own: `queue_full`, `event_too_large`). */
data class Dropped(
    val eventId: String,
    val type: EventType,
    val code: String,
    val message: String? = null,
    /** HTTP status of the answer that refused it; null for drops decided in the client. */
    val status: Int? = null,
)

internal fun utf8Length(s: String): Int {
    var n = 0
    var i = 0
    while (i < s.length) {
        val c = s[i]
        n += when {
            c.code < 0x80 -> 1
            c.code < 0x800 -> 2
            Character.isHighSurrogate(c) && i + 1 < s.length && Character.isLowSurrogate(s[i + 1]) -> { i++; 4 }
            else -> 3
        }
        i++
    }
    return n
}

