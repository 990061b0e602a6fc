package dev.adc.sdk

import java.security.MessageDigest
import java.util.Base64
import javax.crypto.Mac
import javax.crypto.spec.SecretKeySpec

/**
 * HMAC request signing as the edge checks it (schemas/src/signing.ts): `X-Adc-Signature` is
 * base64url (no padding) of HMAC-SHA256(UTF-8 secret, `${timestamp}.${METHOD}.${path}.${sha256hex(body)}`),
 * where `path` is the URL path without the query.
 */
object Signing {
    const val KEY_ID_HEADER = "X-Adc-Key-Id"
    const val TIMESTAMP_HEADER = "X-Adc-Timestamp"
    const val SIGNATURE_HEADER = "X-Adc-Signature"

    /** How far the timestamp may be from the edge clock. */
    const val WINDOW_SECONDS = 300L

    fun signingString(timestamp: Long, method: String, path: String, bodySha256Hex: String): String =
        "$timestamp.${method.uppercase()}.$path.$bodySha256Hex"

    fun sha256Hex(body: ByteArray): String = hex(MessageDigest.getInstance("SHA-256").digest(body))

    fun sha256Hex(body: String): String = sha256Hex(body.toByteArray(Charsets.UTF_8))

    /** The `X-Adc-Signature` value for one request. */
    fun signRequest(secret: String, timestamp: Long, method: String, path: String, body: ByteArray): String =
        base64Url(hmacSha256(secret, signingString(timestamp, method, path, sha256Hex(body)).toByteArray(Charsets.UTF_8)))

    fun signRequest(secret: String, timestamp: Long, method: String, path: String, body: String): String =
        signRequest(secret, timestamp, method, path, body.toByteArray(Charsets.UTF_8))

    /** The three headers for one request. */
    fun headers(keyId: String, secret: String, timestamp: Long, method: String, path: String, body: ByteArray): Map<String, String> =
        linkedMapOf(
            KEY_ID_HEADER to keyId,
            TIMESTAMP_HEADER to timestamp.toString(),
            SIGNATURE_HEADER to signRequest(secret, timestamp, method, path, body),
        )

    internal fun hmacSha256(secret: String, data: ByteArray): ByteArray {
        val mac = Mac.getInstance("HmacSHA256")
        mac.init(SecretKeySpec(secret.toByteArray(Charsets.UTF_8), "HmacSHA256"))
        return mac.doFinal(data)
    }

    internal fun base64Url(bytes: ByteArray): String = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes)

    private val HEX = "0123456789abcdef".toCharArray()

    internal fun hex(bytes: ByteArray): String {
        val out = CharArray(bytes.size * 2)
        for (i in bytes.indices) {
            val b = bytes[i].toInt() and 0xff
            out[i * 2] = HEX[b ushr 4]
            out[i * 2 + 1] = HEX[b and 0x0f]
        }
        return String(out)
    }
}

/** Keys and shard numbers the edge and core derive from an event (schemas/src/keys.ts), for servers that need them. */
object Keys {
    /** Delivery idempotency key: hex of the first 16 bytes of SHA-256 over `publisherId U+001F eventType U+001F eventId`. */
    fun idempotencyKey(publisherId: String, eventType: EventType, eventId: String): String {
        val digest = MessageDigest.getInstance("SHA-256").digest("$publisherId\u001f${eventType.wire}\u001f$eventId".toByteArray(Charsets.UTF_8))
        return Signing.hex(digest.copyOf(16))
    }

    /** Kafka's `Utils.murmur2` (seed 0x9747b28c) over the UTF-8 bytes of `key`. */
    fun murmur2(key: String): Int {
        val data = key.toByteArray(Charsets.UTF_8)
        val length = data.size
        val m = 0x5bd1e995
        val r = 24
        var h = 0x9747b28c.toInt() xor length
        val length4 = length / 4
        for (i in 0 until length4) {
            val i4 = i * 4
            var k = (data[i4].toInt() and 0xff) + ((data[i4 + 1].toInt() and 0xff) shl 8) +
                ((data[i4 + 2].toInt() and 0xff) shl 16) + ((data[i4 + 3].toInt() and 0xff) shl 24)
            k *= m
            k = k xor (k ushr r)
            k *= m
            h *= m
            h = h xor k
        }
        val rem = length % 4
        if (rem == 3) h = h xor ((data[(length and 3.inv()) + 2].toInt() and 0xff) shl 16)
        if (rem >= 2) h = h xor ((data[(length and 3.inv()) + 1].toInt() and 0xff) shl 8)
        if (rem >= 1) {
            h = h xor (data[length and 3.inv()].toInt() and 0xff)
            h *= m
        }
        h = h xor (h ushr 13)
        h *= m
        h = h xor (h ushr 15)
        return h
    }

    /** `(murmur2(key) & 0x7fffffff) % partitions`, Kafka's default partitioner. */
    fun partition(key: String, partitions: Int): Int = (murmur2(key) and 0x7fffffff) % partitions
}
