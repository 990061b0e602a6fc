package dev.adc.sdk

import java.io.Closeable
import java.io.File
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.Files
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption

/**
 * Where queued events live between runs. The queue calls it under its own lock, one call at a
 * time; [append] and [remove] return once the change is stored.
 */
interface QueueStore : Closeable {
    /** The stored events, oldest first; of an id stored twice (see [replace]) the later is current. */
    fun load(): List<QueuedEvent>
    fun append(events: List<QueuedEvent>)
    fun remove(eventIds: Collection<String>)

    /**
     * Stores new versions of queued events (their `ts` corrected to the edge's clock). The default
     * appends them and removes nothing, so a failure or a crash midway never leaves an event without
     * a stored version: a store keyed by event id replaces the earlier version; one that keeps both
     * loads both, and the queue keeps the later one (one event per id), and a [remove] of the id must
     * remove both. Stores that can replace in place, atomically, should.
     */
    fun replace(events: List<QueuedEvent>) {
        append(events)
    }

    override fun close() {}
}

/** Keeps nothing across restarts. */
class MemoryQueueStore : QueueStore {
    override fun load(): List<QueuedEvent> = emptyList()
    override fun append(events: List<QueuedEvent>) {}
    override fun remove(eventIds: Collection<String>) {}
    override fun replace(events: List<QueuedEvent>) {}
}

/**
 * An append log in one file: `+<type> <eventId> <json>` adds an event (or replaces it, keeping its
 * place), `-<eventId>` removes one. A `+` line of an event whose `ts` the client stamped is followed
 * by `~<eventId> <deviceTs> <tsOffset> <g|c>` (the clock it was stamped on: the offset a guess or
 * confirmed); a reader that does not know `~` lines skips them.
 * Appends are fsynced (unless `fsync = false`), so an event is on disk when `impression()` returns.
 * The log is compacted into a new file, fsynced and atomically renamed over the old one, on load
 * and whenever removed lines outnumber the live ones; a torn last line (a crash mid-append) is
 * ignored on load and gone after that compaction.
 */
class FileQueueStore(private val file: File, private val fsync: Boolean = true) : QueueStore {
    private var channel: FileChannel? = null
    private val live = LinkedHashMap<String, QueuedEvent>()
    private var deadLines = 0

    override fun load(): List<QueuedEvent> {
        live.clear()
        if (file.exists()) {
            file.bufferedReader(Charsets.UTF_8).useLines { lines ->
                for (line in lines) parseLine(line)
            }
        }
        compact()
        return live.values.toList()
    }

    private fun parseLine(line: String) {
        if (line.startsWith("-")) {
            live.remove(line.substring(1))
            return
        }
        if (line.startsWith("~")) {
            val parts = line.substring(1).split(' ')
            if (parts.size != 4 || (parts[3] != "g" && parts[3] != "c")) return
            val e = live[parts[0]] ?: return
            val deviceTs = parts[1].toLongOrNull() ?: return
            val offset = parts[2].toLongOrNull() ?: return
            live[e.eventId] = QueuedEvent(e.type, e.eventId, e.json, deviceTs, offset, parts[3] == "g")
            return
        }
        if (!line.startsWith("+")) return
        val s1 = line.indexOf(' ')
        val s2 = if (s1 < 0) -1 else line.indexOf(' ', s1 + 1)
        if (s2 < 0) return
        val type = EventType.of(line.substring(1, s1)) ?: return
        val json = line.substring(s2 + 1)
        // A torn line (crash mid-append) does not end its JSON object.
        if (!json.startsWith("{") || !json.endsWith("}")) return
        val id = line.substring(s1 + 1, s2)
        live[id] = QueuedEvent(type, id, json)
    }

    override fun append(events: List<QueuedEvent>) {
        if (events.isEmpty()) return
        val sb = StringBuilder()
        for (e in events) {
            require(e.json.indexOf('\n') < 0) { "event JSON must be one line" }
            line(sb, e)
            live[e.eventId] = e
        }
        write(sb)
    }

    override fun replace(events: List<QueuedEvent>) {
        val sb = StringBuilder()
        for (e in events) {
            require(e.json.indexOf('\n') < 0) { "event JSON must be one line" }
            if (!live.containsKey(e.eventId)) continue
            line(sb, e)
            live[e.eventId] = e
            deadLines += 2
        }
        if (sb.isEmpty()) return
        if (deadLines > live.size && deadLines > 64) compact() else write(sb)
    }

    private fun line(sb: StringBuilder, e: QueuedEvent) {
        sb.append('+').append(e.type.wire).append(' ').append(e.eventId).append(' ').append(e.json).append('\n')
        if (e.deviceTs != null) {
            sb.append('~').append(e.eventId).append(' ').append(e.deviceTs).append(' ').append(e.tsOffset ?: 0L)
                .append(' ').append(if (e.tsGuess) 'g' else 'c').append('\n')
        }
    }

    override fun remove(eventIds: Collection<String>) {
        if (eventIds.isEmpty()) return
        val sb = StringBuilder()
        for (id in eventIds) {
            if (live.remove(id) != null) {
                sb.append('-').append(id).append('\n')
                deadLines += 2
            }
        }
        if (sb.isEmpty()) return
        if (deadLines > live.size && deadLines > 64) compact() else write(sb)
    }

    private fun write(sb: CharSequence) {
        val ch = channel ?: open()
        val buf = ByteBuffer.wrap(sb.toString().toByteArray(Charsets.UTF_8))
        while (buf.hasRemaining()) ch.write(buf)
        if (fsync) ch.force(false)
    }

    private fun open(): FileChannel {
        file.absoluteFile.parentFile?.mkdirs()
        val ch = FileChannel.open(file.toPath(), StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND)
        channel = ch
        return ch
    }

    /** Rewrites the live events to a temp file, fsyncs it and renames it over the log. */
    private fun compact() {
        channel?.close()
        channel = null
        file.absoluteFile.parentFile?.mkdirs()
        val tmp = File(file.absoluteFile.parentFile, "${file.name}.tmp")
        FileChannel.open(tmp.toPath(), StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING).use { ch ->
            val sb = StringBuilder()
            for (e in live.values) line(sb, e)
            val buf = ByteBuffer.wrap(sb.toString().toByteArray(Charsets.UTF_8))
            while (buf.hasRemaining()) ch.write(buf)
            if (fsync) ch.force(true)
        }
        try {
            Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
        } catch (e: AtomicMoveNotSupportedException) {
            Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING)
        }
        deadLines = 0
    }

    override fun close() {
        try {
            channel?.close()
        } catch (e: IOException) {
            // nothing left to lose: every append was already written
        }
        channel = null
    }
}

/**
 * The in-memory queue mirrored to a [QueueStore], with a cap: past `maxEvents` the oldest events
 * are shed (reported through `onShed`) and counted. Thread-safe.
 */
internal class EventQueue(private val store: QueueStore, private val maxEvents: Int, private val onShed: (QueuedEvent) -> Unit) {
    private val events = LinkedHashMap<String, QueuedEvent>()
    private var totalBytes = 0L
    var shed = 0L
        private set

    @Synchronized
    fun load() {
        val loaded = store.load()
        val fresh = LinkedHashMap<String, QueuedEvent>()
        for (e in loaded) fresh[e.eventId] = e
        for ((id, e) in events) if (id !in fresh) fresh[id] = e
        events.clear()
        events.putAll(fresh)
        totalBytes = events.values.sumOf { it.bytes.toLong() }
        trim().forEach(onShed)
    }

    /** Adds an event; returns once it is stored (a store failure is thrown after the event is kept in memory). */
    fun push(event: QueuedEvent) {
        val shedNow: List<QueuedEvent>
        synchronized(this) {
            if (events.put(event.eventId, event) == null) totalBytes += event.bytes
            try {
                store.append(listOf(event))
            } finally {
                shedNow = trim()
            }
        }
        shedNow.forEach(onShed)
    }

    private fun trim(): List<QueuedEvent> {
        if (events.size <= maxEvents) return emptyList()
        val out = ArrayList<QueuedEvent>()
        val it = events.values.iterator()
        while (events.size > maxEvents && it.hasNext()) {
            val e = it.next()
            it.remove()
            totalBytes -= e.bytes
            out.add(e)
        }
        shed += out.size
        store.remove(out.map { it.eventId })
        return out
    }

    @Synchronized
    fun peek(): List<QueuedEvent> = events.values.toList()

    /** Puts new versions of queued events in their places (an event no longer queued is left out). */
    @Synchronized
    fun replace(updated: List<QueuedEvent>) {
        val present = updated.filter { it.eventId in events }
        if (present.isEmpty()) return
        for (e in present) events.put(e.eventId, e)?.let { totalBytes += e.bytes - it.bytes }
        store.replace(present)
    }

    @Synchronized
    fun remove(ids: Collection<String>) {
        for (id in ids) events.remove(id)?.let { totalBytes -= it.bytes }
        store.remove(ids)
    }

    val size: Int @Synchronized get() = events.size
    val bytes: Long @Synchronized get() = totalBytes

    fun close() = store.close()
}
