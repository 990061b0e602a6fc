package dev.adc.sdk

import java.security.SecureRandom

/**
 * Monotonic ULIDs (Crockford base32: 48-bit ms time, 80 random bits). Within one millisecond the
 * random part is incremented, so ids made by one client sort in creation order.
 */
class UlidFactory(private val random: java.util.Random = SecureRandom()) {
    private var lastTime = -1L
    private val lastRandom = ByteArray(10)

    @Synchronized
    fun next(timeMs: Long): String {
        require(timeMs in 0..0xFFFFFFFFFFFFL) { "time out of range for a ULID" }
        if (timeMs <= lastTime) {
            increment()
        } else {
            lastTime = timeMs
            random.nextBytes(lastRandom)
        }
        return encode(lastTime, lastRandom)
    }

    private fun increment() {
        for (i in lastRandom.indices.reversed()) {
            val v = (lastRandom[i].toInt() and 0xff) + 1
            lastRandom[i] = v.toByte()
            if (v <= 0xff) return
        }
        // 80 bits overflowed within one millisecond: move to the next one.
        lastTime++
        random.nextBytes(lastRandom)
    }

    companion object {
        private const val ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

        internal fun encode(time: Long, rand: ByteArray): String {
            val out = CharArray(26)
            var t = time
            for (i in 9 downTo 0) {
                out[i] = ALPHABET[(t and 31).toInt()]
                t = t ushr 5
            }
            // 80 bits of randomness as 16 characters of 5 bits.
            var bitBuf = 0L
            var bits = 0
            var pos = 10
            for (b in rand) {
                bitBuf = (bitBuf shl 8) or (b.toLong() and 0xff)
                bits += 8
                while (bits >= 5) {
                    bits -= 5
                    out[pos++] = ALPHABET[((bitBuf ushr bits) and 31).toInt()]
                }
            }
            return String(out)
        }
    }
}
