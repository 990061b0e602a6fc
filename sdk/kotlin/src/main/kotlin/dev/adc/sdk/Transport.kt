package dev.adc.sdk

import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.contentOrNull
import kotlinx.serialization.json.intOrNull
import okhttp3.Call
import okhttp3.Callback
import okhttp3.MediaType.Companion.toMediaType
import okhttp3.OkHttpClient
import okhttp3.Request
import okhttp3.RequestBody.Companion.toRequestBody
import okhttp3.Response
import java.io.IOException
import kotlin.coroutines.resume

/** What one POST of a batch came to, per event. */
internal class SendOutcome(
    /** Stored by the edge (accepted or duplicate): remove from the queue. */
    val done: List<QueuedEvent>,
    /** Refused for good: remove and report. */
    val dropped: List<Dropped>,
    /** Not stored: keep and retry after a backoff. */
    val retry: List<QueuedEvent>,
    /** HTTP status, or 0 for a network error. */
    val status: Int,
    /** The server's Retry-After, ms, when it sent one. */
    val retryAfterMs: Long? = null,
)

/** Whole-request answers that a retry cannot change (README "Edge collector"). */
private val NOT_RETRIED = setOf(400, 401, 403, 404, 410, 413, 415, 422)
private val JSON_TYPE = "application/json".toMediaType()

internal class Transport(
    private val http: OkHttpClient,
    private val endpoint: String,
    private val authorizer: Authorizer,
    private val userAgent: String,
    private val nowMs: () -> Long,
    private val clock: EdgeClock? = null,
) {
    suspend fun send(batch: Batch): SendOutcome {
        val builder = Request.Builder()
            .url("$endpoint${batch.path}")
            .header("User-Agent", userAgent)
            .post(batch.body.toRequestBody(JSON_TYPE))
        for ((k, v) in authorizer.headers(batch.path, batch.body)) builder.header(k, v)
        val sentAt = clock?.deviceNow() ?: 0L
        val answer = try {
            http.newCall(builder.build()).await().use { res -> Answer(res.code, res.header("Retry-After"), res.body.string(), res.header("Date")) }
        } catch (e: IOException) {
            return SendOutcome(emptyList(), emptyList(), batch.events, 0)
        }
        return interpret(batch, answer.status, answer.retryAfter, answer.body, answer.date, sentAt, clock?.deviceNow() ?: 0L)
    }

    private class Answer(val status: Int, val retryAfter: String?, val body: String, val date: String?)

    fun interpret(
        batch: Batch, status: Int, retryAfterHeader: String?, text: String, dateHeader: String? = null, sentAt: Long = 0, receivedAt: Long = 0,
    ): SendOutcome {
        val retryAfter = Backoff.retryAfterMs(retryAfterHeader, nowMs())
        val body = try {
            Json.parseToJsonElement(text) as? JsonObject
        } catch (e: Exception) {
            null
        }
        val results = body?.get("results") as? JsonArray
        val error = body?.get("error") as? JsonObject
        val code = (error?.get("code") as? JsonPrimitive)?.contentOrNull
        // Only an answer the edge wrote (per-event results or its error shape) tells the edge's clock:
        // a captive portal's or a proxy's page says nothing about it.
        val dated = (results != null || code != null) && clock?.observe(dateHeader, sentAt, receivedAt) == true
        // Per-event answers: a 202, or a 503 upstream_unavailable that says which events were stored.
        if (results != null && (status < 300 || status >= 500)) {
            val done = ArrayList<QueuedEvent>()
            val dropped = ArrayList<Dropped>()
            val retry = ArrayList<QueuedEvent>()
            val seen = HashSet<Int>()
            for (r in results) {
                val o = r as? JsonObject ?: continue
                val index = (o["index"] as? JsonPrimitive)?.intOrNull ?: continue
                val event = batch.events.getOrNull(index) ?: continue
                if (!seen.add(index)) continue
                when ((o["status"] as? JsonPrimitive)?.contentOrNull) {
                    "accepted", "duplicate", "queued" -> done.add(event)
                    "rejected" -> dropped.add(
                        Dropped(event.eventId, event.type, (o["code"] as? JsonPrimitive)?.contentOrNull ?: "invalid_event",
                            (o["message"] as? JsonPrimitive)?.contentOrNull, status),
                    )
                    else -> retry.add(event)
                }
            }
            // An event the answer did not mention was not stored.
            batch.events.forEachIndexed { i, e -> if (i !in seen) retry.add(e) }
            return SendOutcome(done, dropped, retry, status, retryAfter)
        }
        if (status in 200..299) return SendOutcome(batch.events, emptyList(), emptyList(), status, retryAfter)
        // The edge saw these exact signed bytes before (a resend within the same second, perhaps by a
        // previous run of this app): signing again with a later timestamp makes a new, valid request.
        if (status == 401 && code == "signature_replayed") {
            return SendOutcome(emptyList(), emptyList(), batch.events, status, maxOf(retryAfter ?: 0, 1000))
        }
        // The device clock is more than 5 minutes from the edge's: nothing is wrong with the events. The
        // answer's Date header gave the edge's clock to sign on (observed above); without it the events
        // wait for a backoff (the clock may be set right meanwhile) rather than being dropped.
        if (status == 401 && code == "signature_stale") {
            if (!dated) return SendOutcome(emptyList(), emptyList(), batch.events, status, retryAfter)
            return SendOutcome(emptyList(), emptyList(), batch.events, status, maxOf(retryAfter ?: 0, 1000))
        }
        if (status in NOT_RETRIED) {
            val message = (error?.get("message") as? JsonPrimitive)?.contentOrNull
            val c = code ?: "http_$status"
            return SendOutcome(emptyList(), batch.events.map { Dropped(it.eventId, it.type, c, message, status) }, emptyList(), status, retryAfter)
        }
        // 408, 429, 5xx and anything unexpected: the events were not stored; try again later.
        return SendOutcome(emptyList(), emptyList(), batch.events, status, retryAfter)
    }
}

/** Runs the call on OkHttp's dispatcher; cancelling the coroutine cancels the call. */
internal suspend fun Call.await(): Response = suspendCancellableCoroutine { cont ->
    enqueue(object : Callback {
        override fun onResponse(call: Call, response: Response) {
            cont.resume(response) { _, r, _ -> r.close() }
        }

        override fun onFailure(call: Call, e: IOException) {
            if (!cont.isCancelled) cont.resumeWith(Result.failure(e))
        }
    })
    cont.invokeOnCancellation { runCatching { cancel() } }
}
