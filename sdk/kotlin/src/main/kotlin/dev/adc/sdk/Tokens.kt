package dev.adc.sdk

import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.buildJsonObject
import kotlinx.serialization.json.contentOrNull
import kotlinx.serialization.json.longOrNull
import java.security.MessageDigest
import java.util.Base64

/**
 * The payload of a signed pixel or click token (schemas/src/token.ts). Keys are written in this
 * order, absent ones left out, so a token minted here is byte-identical to the reference.
 */
data class TokenPayload(
    val impressionId: String,
    val campaignId: String,
    val adId: String,
    val publisherId: String,
    val requestId: String,
    /** Expiry, Unix seconds. */
    val exp: Long,
    /** Click tokens: the landing URL the redirect goes to. */
    val url: String? = null,
    /** `web`, `app`, `ctv` or `s2s`. */
    val channel: String? = null,
) {
    fun toJson(): String = buildJsonObject {
        put("impressionId", JsonPrimitive(impressionId))
        put("campaignId", JsonPrimitive(campaignId))
        put("adId", JsonPrimitive(adId))
        put("publisherId", JsonPrimitive(publisherId))
        put("requestId", JsonPrimitive(requestId))
        put("exp", JsonPrimitive(exp))
        if (url != null) put("url", JsonPrimitive(url))
        if (channel != null) put("channel", JsonPrimitive(channel))
    }.toString()
}

/** A publisher's token signing key (purpose `token`; request signing uses a key of purpose `request`). */
data class SigningKey(val keyId: String, val secret: String)

sealed interface TokenCheck {
    data class Valid(val keyId: String, val payload: TokenPayload) : TokenCheck
    /** `reason` is `invalid_token` or `token_expired`. */
    data class Invalid(val reason: String, val message: String) : TokenCheck
}

/**
 * Token minting for JVM ad servers: `v1.<keyId>.<payload>.<sig>`, where payload is base64url (no
 * padding) of the UTF-8 JSON and sig is base64url of HMAC-SHA256(secret, ASCII `v1.<keyId>.<payload>`).
 */
object Tokens {
    const val VERSION = "v1"
    const val MAX_TOKEN_LENGTH = 4096
    private val KEY_ID = Regex("^[A-Za-z0-9_-]{1,64}$")
    private val ID = Regex("^[A-Za-z0-9._:-]{1,128}$")
    private val B64URL = Regex("^[A-Za-z0-9_-]*$")
    private val CHANNELS = setOf("web", "app", "ctv", "s2s")

    fun mint(payload: TokenPayload, key: SigningKey): String {
        require(KEY_ID.matches(key.keyId)) { "keyId must match [A-Za-z0-9_-]{1,64}" }
        validate(payload)?.let { throw IllegalArgumentException(it) }
        val body = Signing.base64Url(payload.toJson().toByteArray(Charsets.UTF_8))
        val signed = "$VERSION.${key.keyId}.$body"
        return "$signed.${Signing.base64Url(Signing.hmacSha256(key.secret, signed.toByteArray(Charsets.US_ASCII)))}"
    }

    /** A pixel token: `${endpoint}/v1/pixel.gif?t=<token>` counts the impression when the pixel loads. */
    fun mintPixelToken(
        impressionId: String, campaignId: String, adId: String, publisherId: String, requestId: String,
        key: SigningKey, ttlSeconds: Long = 86_400, channel: String? = null, nowMs: Long = System.currentTimeMillis(),
    ): String = mint(TokenPayload(impressionId, campaignId, adId, publisherId, requestId, nowMs / 1000 + ttlSeconds, null, channel), key)

    /** A click token carrying the landing URL: `${endpoint}/c/<token>` records the click and redirects. */
    fun mintClickToken(
        impressionId: String, campaignId: String, adId: String, publisherId: String, requestId: String, url: String,
        key: SigningKey, ttlSeconds: Long = 86_400, channel: String? = null, nowMs: Long = System.currentTimeMillis(),
    ): String = mint(TokenPayload(impressionId, campaignId, adId, publisherId, requestId, nowMs / 1000 + ttlSeconds, url, channel), key)

    fun pixelUrl(endpoint: String, token: String): String = "${endpoint.trimEnd('/')}/v1/pixel.gif?t=${encode(token)}"

    fun clickUrl(endpoint: String, token: String): String = "${endpoint.trimEnd('/')}/c/${encode(token)}"

    /** Verifies a token as the edge does (shape, key, constant-time signature, payload, expiry). Never throws. */
    fun verify(token: String, secretFor: (String) -> String?, nowSeconds: Long = System.currentTimeMillis() / 1000): TokenCheck {
        fun fail(message: String) = TokenCheck.Invalid("invalid_token", message)
        if (token.isEmpty()) return fail("token is missing")
        if (token.length > MAX_TOKEN_LENGTH) return fail("token is too long")
        val parts = token.split('.')
        if (parts.size != 4) return fail("token must be v1.<keyId>.<payload>.<sig>")
        val (version, keyId, body, sigText) = parts
        if (version != VERSION) return fail("unknown token version")
        if (!KEY_ID.matches(keyId)) return fail("malformed key id")
        val sig = decode(sigText)
        val bytes = decode(body)
        if (sig == null || bytes == null) return fail("token parts are not base64url")
        if (sig.size != 32) return fail("signature has the wrong length")
        val secret = secretFor(keyId) ?: return fail("unknown key id")
        val expected = Signing.hmacSha256(secret, "$version.$keyId.$body".toByteArray(Charsets.US_ASCII))
        if (!MessageDigest.isEqual(expected, sig)) return fail("signature does not match")
        val payload = try {
            val text = Charsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString()
            parsePayload(Json.parseToJsonElement(text) as JsonObject)
        } catch (e: Exception) {
            null
        } ?: return fail("payload is invalid")
        validate(payload)?.let { return fail("payload is invalid: $it") }
        if (payload.exp <= nowSeconds) return TokenCheck.Invalid("token_expired", "token has expired")
        return TokenCheck.Valid(keyId, payload)
    }

    private fun parsePayload(o: JsonObject): TokenPayload? {
        val allowed = setOf("impressionId", "campaignId", "adId", "publisherId", "requestId", "exp", "url", "channel")
        if (!allowed.containsAll(o.keys)) return null
        fun str(name: String): String? = (o[name] as? JsonPrimitive)?.takeIf { it.isString }?.contentOrNull
        return TokenPayload(
            str("impressionId") ?: return null, str("campaignId") ?: return null, str("adId") ?: return null,
            str("publisherId") ?: return null, str("requestId") ?: return null,
            (o["exp"] as? JsonPrimitive)?.takeIf { !it.isString }?.longOrNull ?: return null,
            if (o.containsKey("url")) str("url") ?: return null else null,
            if (o.containsKey("channel")) str("channel") ?: return null else null,
        )
    }

    private fun validate(p: TokenPayload): String? {
        for ((name, v) in listOf("impressionId" to p.impressionId, "campaignId" to p.campaignId, "adId" to p.adId, "publisherId" to p.publisherId, "requestId" to p.requestId)) {
            if (!ID.matches(v)) return "$name is not a valid id"
        }
        if (p.exp <= 0) return "exp must be a positive integer"
        if (p.url != null) {
            val ok = p.url.length <= 2048 && runCatching { java.net.URI(p.url).scheme?.lowercase() in setOf("http", "https") }.getOrDefault(false)
            if (!ok) return "url must be an absolute http or https URL"
        }
        if (p.channel != null && p.channel !in CHANNELS) return "channel must be one of $CHANNELS"
        return null
    }

    /** Unpadded, canonical base64url, or null. */
    private fun decode(text: String): ByteArray? {
        if (!B64URL.matches(text) || text.length % 4 == 1) return null
        val out = try {
            Base64.getUrlDecoder().decode(text)
        } catch (e: IllegalArgumentException) {
            return null
        }
        return if (Signing.base64Url(out) == text) out else null
    }

    private fun encode(s: String): String = java.net.URLEncoder.encode(s, "UTF-8").replace("+", "%20")
}
