/**
 * Every reason code the system emits, in one registry. Adding a code means adding it here:
 * the type `ReasonCode` is derived from this map, so an unregistered code does not compile.
 *
 * - `status`: the HTTP status an edge answer carries for it (per event or per request), if any.
 * - `billable`: whether an event with this reason is billed (always false: reasons explain why not).
 * - `emitter`: which part of the system creates it, and when.
 */
export interface ReasonMeta {
  readonly status?: number
  readonly billable: boolean
  readonly emitter: 'edge' | 'core' | 'both' | 'sdk'
  readonly description: string
}

export const REASONS = {
  // whole-request failures at the edge
  bad_json: { status: 400, billable: false, emitter: 'edge', description: 'The body is not valid JSON.' },
  invalid_batch: { status: 400, billable: false, emitter: 'edge', description: 'The body is not {"events":[...]} with 1-500 events.' },
  unauthorized: { status: 401, billable: false, emitter: 'both', description: 'Missing or unknown API key or signature.' },
  forbidden: { status: 403, billable: false, emitter: 'both', description: 'The key may not act on this resource.' },
  not_found: { status: 404, billable: false, emitter: 'both', description: 'No such route or resource.' },
  payload_too_large: { status: 413, billable: false, emitter: 'both', description: 'The body exceeds the size limit.' },
  unsupported_media_type: { status: 415, billable: false, emitter: 'edge', description: 'The Content-Type is not accepted on this route.' },
  rate_limited: { status: 429, billable: false, emitter: 'edge', description: 'The publisher exceeded its rate limit; see Retry-After.' },
  client_rate_limited: { status: 429, billable: false, emitter: 'edge', description: "This client address sent more than its share of the publisher's public budgets (beacon, pixel, click redirect); see Retry-After." },
  api_rate_limited: { status: 429, billable: false, emitter: 'core', description: "This advertiser's or publisher's API key sent more requests than its budget on core's API; see Retry-After." },
  signature_stale: { status: 401, billable: false, emitter: 'edge', description: 'The request signature timestamp is outside the allowed window.' },
  signature_replayed: { status: 401, billable: false, emitter: 'edge', description: 'This request signature was already used.' },
  invalid_token: { status: 400, billable: false, emitter: 'edge', description: 'The signed token is malformed, tampered, signed by an unknown or non-token key, or does not match its event.' },
  token_expired: { status: 410, billable: false, emitter: 'edge', description: 'The signed token has expired.' },
  upstream_unavailable: { status: 503, billable: false, emitter: 'edge', description: 'Events could neither be forwarded nor spooled.' },
  produce_retried: { billable: false, emitter: 'edge', description: "Logged when the edge sends a produce again after an attempt that failed or timed out. An attempt the proxy stored but did not acknowledge in time leaves a copy of its envelopes in the log: core keeps it as duplicate_delivery and the accounting report counts the acceptance once (logCopies)." },
  proxy_unauthorized: { status: 401, billable: false, emitter: 'edge', description: 'The REST proxy refused the edge credentials (REST_PROXY_USER/REST_PROXY_PASSWORD); the records are kept in the Spool as fatal, not lost.' },
  edge_misconfigured: { status: 503, billable: false, emitter: 'edge', description: 'The edge lacks a required variable, or runs with development secrets outside development.' },
  invalid_query: { status: 400, billable: false, emitter: 'core', description: 'A query parameter is missing or malformed.' },
  beyond_retention: { status: 410, billable: false, emitter: 'core', description: 'The range reaches back before what ClickHouse still keeps (RETENTION_*_DAYS): its figures can no longer be read or recomputed there (billing snapshots are never expired).' },
  invalid_range: { status: 400, billable: false, emitter: 'core', description: 'The time range is reversed, too long or in the future.' },
  invalid_body: { status: 400, billable: false, emitter: 'core', description: 'The JSON body is missing, malformed or does not match its schema.' },
  method_not_allowed: { status: 405, billable: false, emitter: 'core', description: 'The route exists but not for this HTTP method; see Allow.' },
  scope_not_applicable: { status: 400, billable: false, emitter: 'core', description: 'A scope (app, server) was given for a signing key of purpose token; only request signing keys have a scope.' },
  partition_mismatch: { status: 422, billable: false, emitter: 'core', description: "A produce call to core's REST proxy gateway named a record's partition other than the one its key hashes to (murmur2); nothing of the call is appended. The processor's dedupe and join state is per partition, so a record placed elsewhere would escape exact dedupe." },
  conflict: { status: 409, billable: false, emitter: 'core', description: 'A resource with that id already exists.' },
  unknown_reference: { status: 422, billable: false, emitter: 'core', description: 'The body refers to a tenant or resource that does not exist.' },
  not_home_region: { status: 421, billable: false, emitter: 'core', description: 'A replica outside the home region (REGION != HOME_REGION) refuses tenant and billing writes; send them to the home region named in the message and X-Adc-Home-Region.' },
  job_not_ready: { status: 409, billable: false, emitter: 'core', description: 'The job has not finished (or failed), so this action is not possible yet.' },
  billing_executor_unavailable: { status: 503, billable: false, emitter: 'core', description: 'A promote asked of a replica without the billing lease was not carried out by the lease holder in time (none alive, or the job store could not take the request); retry after Retry-After.' },
  query_timeout: { status: 503, billable: false, emitter: 'core', description: 'The query ran past its time limit; narrow the range or retry later.' },
  internal_error: { status: 500, billable: false, emitter: 'both', description: 'An unexpected failure; the request can be retried.' },

  // per-event outcomes at the edge
  invalid_event: { status: 400, billable: false, emitter: 'edge', description: 'The event does not match its schema.' },
  publisher_mismatch: { status: 403, billable: false, emitter: 'edge', description: "The event's publisherId is not the authenticated publisher." },
  unknown_campaign: { status: 422, billable: false, emitter: 'both', description: 'The campaignId is not a booked campaign, or not one booked with the event\'s publisher: refused at the edge, kept unbilled in core if one gets through.' },
  click_token_required: { status: 403, billable: false, emitter: 'edge', description: 'A click sent with a public API key or signed with an app-scope request key carries no clickToken; send the signed click token, or use a server key or a server-scope request signature.' },
  clock_skew: { status: 422, billable: false, emitter: 'edge', description: 'ts is more than 5 minutes ahead of or 24 hours behind the edge clock.' },
  duplicate_delivery: { status: 409, billable: false, emitter: 'both', description: 'The same idempotency key was already accepted (a retry).' },

  // kept but not billed, in core
  duplicate_impression: { billable: false, emitter: 'core', description: 'A second impression for an impressionId already counted.' },
  repeat_click: { billable: false, emitter: 'core', description: 'A later click on an impression that already had a click within the dedupe horizon (a prefetch or link scanner on the redirect is none).' },
  orphan_click: { billable: false, emitter: 'core', description: 'A click whose impression was not seen within the join window (provisional).' },
  prefetch_click: { billable: false, emitter: 'both', description: 'A HEAD, prefetch/prerender or link-scanner request on the click redirect.' },
  prefetch_pixel: { billable: false, emitter: 'edge', description: 'A HEAD or link-scanner request on the pixel: answered with the GIF, not recorded, so it never takes the impression of the person who loads the same token.' },
  givt_known_bot: { billable: false, emitter: 'core', description: 'The user agent is a known bot or crawler.' },
  givt_non_browser: { billable: false, emitter: 'core', description: 'The user agent is not a browser (HTTP library, tool).' },
  givt_missing_ua: { billable: false, emitter: 'core', description: 'No user agent was sent on a web event.' },
  givt_datacenter_ip: { billable: false, emitter: 'core', description: 'The IP belongs to a known datacenter range.' },
  sivt_fast_click: { billable: false, emitter: 'core', description: 'The click came faster than humanly possible after the impression.' },
  sivt_burst: { billable: false, emitter: 'core', description: 'Burst of activity from one IP prefix, user or publisher in a minute.' },
  givt_prefetch: { billable: false, emitter: 'core', description: 'The edge marked the request as HEAD, prefetch/prerender or a link scanner (impression).' },
  join_pending: { billable: false, emitter: 'core', description: 'A click waiting in the processor for its impression; written later as a joined click or an orphan_click.' },

  // client-side drops in the SDKs (sdk/js), reported to the app's callbacks, never sent
  queue_full: { billable: false, emitter: 'sdk', description: 'The SDK queue reached its cap and shed its oldest event to make room.' },
  event_too_large: { billable: false, emitter: 'sdk', description: 'One event alone exceeds the largest body its route accepts, so it can never be sent.' },

  // bad rows in core
  bad_envelope: { billable: false, emitter: 'core', description: 'A log record that is not a valid v1 envelope.' },
  unknown_version: { billable: false, emitter: 'core', description: 'A log envelope with an unknown version.' },
  bad_edge_stats: { billable: false, emitter: 'core', description: 'An edge-stats log record that is not valid edge_stats JSON.' },
  bad_tenant_record: { billable: false, emitter: 'core', description: 'A record of the shared tenant topic that is not a tenant command, or that failed to apply for a reason other than a conflict or a missing reference; skipped by every replica alike (logged, no event involved).' },
  tenant_view_behind: { billable: false, emitter: 'core', description: "The processor's tenant view did not catch up with the tenant topic in time before it would have called an event's campaign unbooked; no verdict is given, the batch is retried (the partition shows stalled) and nothing past it is committed." },
  tenant_version_ahead: { billable: false, emitter: 'core', description: 'An event names a tenant config version (edge.configVersion) that the caught-up tenant view does not reach (a stamp of another log, a static edge config, a forged record); its campaign is judged on the view, so it stays unknown_campaign if not booked there (logged and counted, never waited for again in that batch).' },
  bad_job_record: { billable: false, emitter: 'core', description: 'A record of the shared billing job topic that is not a job command, or that failed to apply; skipped on every replica alike.' },
  sink_rejected: { billable: false, emitter: 'core', description: "A sink (ClickHouse, Iceberg) refused this record's rows for their content (a parse or type error); kept as a bad row with the engine's message, the rest of its batch written." },

  // Iceberg lake writes in core: the batch is retried (nothing is dropped), the error is logged
  lake_commit_conflict: { billable: false, emitter: 'core', description: 'The Iceberg commit kept conflicting with other writers past the retry limit.' },
  lake_catalog_error: { billable: false, emitter: 'core', description: 'The Iceberg catalog refused or failed a call (load, create or commit).' },
  lake_storage_error: { billable: false, emitter: 'core', description: 'Writing or reading an Iceberg data, manifest or metadata file failed.' },

  // Object storage of core's export files (objects/): the request fails, nothing is published
  object_storage_error: { billable: false, emitter: 'core', description: 'Writing, reading or listing an object in the export store (a local directory or S3) failed; nothing partial is published and the call can be retried.' },
  export_write_failed: { billable: false, emitter: 'core', description: "Writing a closed version's export files right after the close failed (object store or ClickHouse); logged, the close stands, and the first listing of the day writes them." },
  lake_rewrite_conflict: { billable: false, emitter: 'core', description: 'An Iceberg compaction or erasure found a data file it meant to rewrite already removed by another writer; it plans again on its next run.' },
  lake_rewrite_unsupported: { billable: false, emitter: 'core', description: 'The Iceberg table holds delete files written by another engine; compaction and erasure do not rewrite data files under them.' },
  privacy_erasure_failed: { billable: false, emitter: 'core', description: "A privacy erasure in ClickHouse's own tables failed; the request's latest audit row records it as pending, and the retry finishes it." },
  lake_erasure_failed: { billable: false, emitter: 'core', description: 'A privacy erasure in the Iceberg table failed; the audit row records it as pending.' },
  lake_upkeep_failed: { billable: false, emitter: 'core', description: 'A scheduled Iceberg upkeep run (compaction, snapshot expiry, clean-up) failed; the next run tries again.' },
  state_format: { billable: false, emitter: 'core', description: 'A partition state directory carries a state format marker of a later build than this one; the processor refuses to open it rather than misread it (format 1, from before the marker, is upgraded in place).' },
} as const satisfies Record<string, ReasonMeta>

export type ReasonCode = keyof typeof REASONS

export function isReasonCode(code: string): code is ReasonCode {
  return Object.prototype.hasOwnProperty.call(REASONS, code)
}
