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
}
