package dev.adc.sdk

/**
 * How the client proves who it is:
 * - [ServerKey]: a secret publisher key for servers, sent as `Authorization: Bearer`.
 * - [RequestSigning]: a signing key of purpose `request` (the edge refuses request signatures from
 *   token keys) and its secret; every request is HMAC-signed anew (README "Edge collector"). Inside an
 *   app, an `app`-scope key (the default): trusted as the public key, so a [Click] must carry the ad
 *   server's `clickToken` and the edge keeps the IP it observes; on a server, a `server`-scope key.
 */
sealed interface Auth {
    data class ServerKey(val key: String) : Auth {
        override fun toString(): String = "ServerKey(***)"
    }

    data class RequestSigning(val keyId: String, val secret: String) : Auth {
        override fun toString(): String = "RequestSigning($keyId, ***)"
    }
}

/**
 * Headers proving one POST of `body` to `path`. [nowMs] is the edge's clock as best known (the client
 * passes the device clock corrected by the offset learnt from the edge's answers, see [EdgeClock]),
 * so a device clock more than 5 minutes off does not get every request refused as `signature_stale`.
 */
internal class Authorizer(private val auth: Auth, private val nowMs: () -> Long) {
    // The edge refuses a signature it has seen (signature_replayed). A retry of the same body within
    // the same second would sign to the same bytes, so the timestamp only moves forward per body, by
    // up to a minute: a body last signed further ahead was signed on a clock since corrected (a device
    // clock ahead, refused as signature_stale), and signing after that stale timestamp would be
    // refused the same way on every retry. Its own second is used then (a replay there is signed anew).
    private val lastSecond = HashMap<String, Long>()

    @Synchronized
    fun headers(path: String, body: ByteArray): Map<String, String> = when (auth) {
        is Auth.ServerKey -> mapOf("Authorization" to "Bearer ${auth.key}")
        is Auth.RequestSigning -> {
            var ts = Math.floorDiv(nowMs(), 1000L)
            val bodyHash = Signing.sha256Hex(body)
            val previous = lastSecond[bodyHash]
            if (previous != null && ts <= previous && previous - ts < MAX_FORWARD_SECONDS) ts = previous + 1
            if (lastSecond.size > 256) lastSecond.clear()
            lastSecond[bodyHash] = ts
            linkedMapOf(
                Signing.KEY_ID_HEADER to auth.keyId,
                Signing.TIMESTAMP_HEADER to ts.toString(),
                Signing.SIGNATURE_HEADER to Signing.base64Url(
                    Signing.hmacSha256(auth.secret, Signing.signingString(ts, "POST", path, bodyHash).toByteArray(Charsets.UTF_8)),
                ),
            )
        }
    }

    private companion object {
        /** How far past the clock a timestamp is moved to differ from the last one of the same body. */
        const val MAX_FORWARD_SECONDS = 60L
    }
}
