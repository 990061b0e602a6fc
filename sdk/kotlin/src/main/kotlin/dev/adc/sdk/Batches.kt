package dev.adc.sdk

/** The edge's body limits on the batch routes (schemas/src/limits.ts). */
object Limits {
    const val MAX_BATCH_EVENTS = 500
    const val MAX_BATCH_BYTES = 1024 * 1024
}

class Batch(val type: EventType, val events: List<QueuedEvent>, val body: ByteArray) {
    val path: String get() = type.path
}

internal class Plan(val batches: List<Batch>, val oversized: List<QueuedEvent>)

private const val ENVELOPE_BYTES = 13 // {"events":[]}

/** One body of `events` (every event's JSON as queued, so a resend is byte-identical per event). */
internal fun batchOf(type: EventType, events: List<QueuedEvent>, sizeHint: Int = ENVELOPE_BYTES): Batch {
    val sb = StringBuilder(sizeHint)
    sb.append("{\"events\":[")
    events.forEachIndexed { i, e -> if (i > 0) sb.append(','); sb.append(e.json) }
    sb.append("]}")
    return Batch(type, events, sb.toString().toByteArray(Charsets.UTF_8))
}

/**
 * Splits queued events into bodies the edge takes: at most `maxEvents` events and `maxBytes` bytes,
 * one route per event type, order within a type kept. An event too large for any body is returned
 * apart: it can never be sent.
 */
internal fun planBatches(events: List<QueuedEvent>, maxBytes: Int = Limits.MAX_BATCH_BYTES, maxEvents: Int = Limits.MAX_BATCH_EVENTS): Plan {
    val groups = LinkedHashMap<EventType, MutableList<QueuedEvent>>()
    val oversized = ArrayList<QueuedEvent>()
    for (e in events) {
        if (ENVELOPE_BYTES + e.bytes + 1 > maxBytes) oversized.add(e) else groups.getOrPut(e.type) { ArrayList() }.add(e)
    }
    val batches = ArrayList<Batch>()
    for ((type, list) in groups) {
        var current = ArrayList<QueuedEvent>()
        var size = ENVELOPE_BYTES
        fun close() {
            if (current.isEmpty()) return
            batches.add(batchOf(type, current, size))
            current = ArrayList()
            size = ENVELOPE_BYTES
        }
        for (e in list) {
            val add = e.bytes + 1
            if (current.size >= maxEvents || size + add > maxBytes) close()
            current.add(e)
            size += add
        }
        close()
    }
    return Plan(batches, oversized)
}
