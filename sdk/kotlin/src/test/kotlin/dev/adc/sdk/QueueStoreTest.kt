package dev.adc.sdk

import java.io.File
import java.nio.file.Files
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

class QueueStoreTest {
    private val dir: File = Files.createTempDirectory("adc-queue").toFile()

    @AfterTest
    fun cleanup() {
        dir.deleteRecursively()
    }

    private fun ev(i: Int, type: EventType = EventType.IMPRESSION) = QueuedEvent(type, "id$i", "{\"eventId\":\"id$i\",\"note\":\"é $i\"}")

    @Test
    fun eventsSurviveAReopenInOrderWithoutTheRemovedOnes() {
        val file = File(dir, "q.log")
        FileQueueStore(file).use { s ->
            assertEquals(emptyList(), s.load())
            s.append(listOf(ev(1), ev(2, EventType.CLICK)))
            s.append(listOf(ev(3)))
            s.remove(listOf("id2"))
        }
        val loaded = FileQueueStore(file).use { it.load() }
        assertEquals(listOf(ev(1), ev(3)), loaded)
        assertEquals(EventType.IMPRESSION, loaded[0].type)
    }

    @Test
    fun aTornLastLineIsIgnoredAndCompactedAway() {
        val file = File(dir, "q.log")
        FileQueueStore(file).use { it.load(); it.append(listOf(ev(1), ev(2))) }
        // A crash in the middle of an append leaves half a line.
        file.appendText("+impression id3 {\"eventId\":\"id3\",\"no")
        FileQueueStore(file).use { s ->
            assertEquals(listOf(ev(1), ev(2)), s.load())
            s.append(listOf(ev(4)))
        }
        assertEquals(listOf(ev(1), ev(2), ev(4)), FileQueueStore(file).use { it.load() })
    }

    @Test
    fun removalsCompactTheLog() {
        val file = File(dir, "q.log")
        FileQueueStore(file, fsync = false).use { s ->
            s.load()
            for (round in 0 until 10) {
                s.append((0 until 100).map { ev(round * 100 + it) })
                s.remove((0 until 100).map { "id${round * 100 + it}" })
            }
            s.append(listOf(ev(5000)))
        }
        assertTrue(file.length() < 20_000, "log holds ${file.length()} bytes")
        assertEquals(listOf(ev(5000)), FileQueueStore(file).use { it.load() })
    }

    @Test
    fun theQueueShedsTheOldestPastItsCapAndCountsThem() {
        val file = File(dir, "q.log")
        val shed = ArrayList<String>()
        val q = EventQueue(FileQueueStore(file), 3) { shed.add(it.eventId) }
        q.load()
        for (i in 1..5) q.push(ev(i))
        assertEquals(listOf("id1", "id2"), shed)
        assertEquals(2, q.shed)
        assertEquals(listOf("id3", "id4", "id5"), q.peek().map { it.eventId })
        assertEquals(3L * ev(3).bytes, q.bytes)
        q.close()
        assertEquals(listOf("id3", "id4", "id5"), FileQueueStore(file).use { it.load() }.map { it.eventId })
    }

    /**
     * An app's own store (a list of records, as a database table might hold them) that implements
     * only load, append and remove. The process dies, or the disk fills, at the store's next append.
     */
    private class ListStore : QueueStore {
        val rows = ArrayList<QueuedEvent>()
        var failNextAppend = false
        override fun load(): List<QueuedEvent> = rows.toList()
        override fun append(events: List<QueuedEvent>) {
            if (failNextAppend) {
                failNextAppend = false
                throw java.io.IOException("the process died here")
            }
            rows.addAll(events)
        }
        override fun remove(eventIds: Collection<String>) {
            rows.removeAll { it.eventId in eventIds }
        }
    }

    @Test
    fun aStoreWithoutItsOwnReplaceKeepsAVersionOfEveryEventWhateverFailsMidReplace() {
        val store = ListStore()
        val q = EventQueue(store, 100) {}
        q.push(QueuedEvent(EventType.IMPRESSION, "id1", "{\"eventId\":\"id1\",\"ts\":1000}", 1000, 0, true))
        // The ts corrected to the edge's clock is stored; the store fails between its two steps.
        store.failNextAppend = true
        runCatching { q.replace(listOf(QueuedEvent(EventType.IMPRESSION, "id1", "{\"eventId\":\"id1\",\"ts\":61000}", 1000, 60_000, false))) }
        // The next run still has the event (either version: the edge dedupes it by its id).
        val next = EventQueue(store, 100) {}
        next.load()
        assertEquals(listOf("id1"), next.peek().map { it.eventId })
        // Without a failure, the next run reads the corrected version.
        next.replace(listOf(QueuedEvent(EventType.IMPRESSION, "id1", "{\"eventId\":\"id1\",\"ts\":61000}", 1000, 60_000, false)))
        val third = EventQueue(store, 100) {}
        third.load()
        assertEquals(listOf("{\"eventId\":\"id1\",\"ts\":61000}"), third.peek().map { it.json })
        // Delivered, it is gone from the store.
        third.remove(listOf("id1"))
        assertEquals(emptyList(), store.load().map { it.eventId })
    }
}
