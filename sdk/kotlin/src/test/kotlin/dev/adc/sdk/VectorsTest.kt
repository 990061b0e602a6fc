package dev.adc.sdk

import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.int
import kotlinx.serialization.json.jsonArray
import kotlinx.serialization.json.jsonObject
import kotlinx.serialization.json.jsonPrimitive
import kotlinx.serialization.json.long
import java.io.File
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue

/** The shared, language-neutral vectors in schemas/vectors, the same files the edge, core and the JS SDK check. */
class VectorsTest {
    private fun vectors(name: String): JsonObject {
        val dir = System.getProperty("adc.vectors") ?: "../../schemas/vectors"
        return Json.parseToJsonElement(File(dir, name).readText()).jsonObject
    }

    private fun JsonObject.str(name: String) = getValue(name).jsonPrimitive.content

    @Test
    fun idempotencyKeys() {
        val cases = vectors("idempotency-keys.json").getValue("cases").jsonArray
        assertTrue(cases.size >= 5)
        for (c in cases.map { it.jsonObject }) {
            val type = EventType.of(c.str("eventType"))!!
            assertEquals(c.str("key"), Keys.idempotencyKey(c.str("publisherId"), type, c.str("eventId")), c.toString())
        }
    }

    @Test
    fun partitions() {
        val cases = vectors("partitions.json").getValue("cases").jsonArray
        assertTrue(cases.size >= 10)
        for (c in cases.map { it.jsonObject }) {
            val key = c.str("key")
            assertEquals(c.getValue("murmur2").jsonPrimitive.int, Keys.murmur2(key), key)
            assertEquals(c.getValue("partitions8").jsonPrimitive.int, Keys.partition(key, 8), key)
            assertEquals(c.getValue("partitions32").jsonPrimitive.int, Keys.partition(key, 32), key)
        }
    }

    @Test
    fun requestSignatures() {
        val cases = vectors("request-signatures.json").getValue("cases").jsonArray
        assertTrue(cases.isNotEmpty())
        for (c in cases.map { it.jsonObject }) {
            val ts = c.getValue("timestamp").jsonPrimitive.long
            assertEquals(c.str("bodySha256"), Signing.sha256Hex(c.str("body")))
            assertEquals(c.str("signingString"), Signing.signingString(ts, c.str("method"), c.str("path"), c.str("bodySha256")))
            assertEquals(c.str("signature"), Signing.signRequest(c.str("secret"), ts, c.str("method"), c.str("path"), c.str("body")))
        }
    }

    private fun payloadOf(o: JsonObject) = TokenPayload(
        o.str("impressionId"), o.str("campaignId"), o.str("adId"), o.str("publisherId"), o.str("requestId"),
        o.getValue("exp").jsonPrimitive.long, o["url"]?.jsonPrimitive?.content, o["channel"]?.jsonPrimitive?.content,
    )

    @Test
    fun tokensMintAndVerify() {
        val v = vectors("tokens.json")
        val verifyAt = v.getValue("verifyAt").jsonPrimitive.long
        val valid = v.getValue("valid").jsonArray.map { it.jsonObject }
        assertTrue(valid.size >= 4)
        for (c in valid) {
            val payload = payloadOf(c.getValue("payload").jsonObject)
            val key = SigningKey(c.str("keyId"), c.str("secret"))
            assertEquals(c.str("token"), Tokens.mint(payload, key), c.str("keyId"))
            val check = Tokens.verify(c.str("token"), { id -> if (id == key.keyId) key.secret else null }, verifyAt)
            assertEquals(TokenCheck.Valid(key.keyId, payload), check)
        }
        val secrets = v.getValue("secrets").jsonObject.mapValues { it.value.jsonPrimitive.content }
        val invalid = v.getValue("invalid").jsonArray.map { it.jsonObject }
        assertTrue(invalid.isNotEmpty())
        for (c in invalid) {
            val check = Tokens.verify(c.str("token"), { secrets[it] }, verifyAt)
            assertIs<TokenCheck.Invalid>(check, c.str("why"))
            assertEquals(c.str("reason"), check.reason, c.str("why"))
        }
    }
}
