/**
 * The `X-Adc-*` HTTP header names, lower case as `Headers` reads them. Request signing's three
 * headers (`SIGNATURE_HEADERS`: X-Adc-Key-Id, X-Adc-Timestamp, X-Adc-Signature) live beside the
 * signing string in schemas/src/signing.ts, which browser bundles import alone.
 */

/** A click redirect that was not counted says why (a reason code) in this header. */
export const REASON_HEADER = 'x-adc-reason'

/** Core's export file route names the billing snapshot version of the file it serves in this header. */
export const SNAPSHOT_VERSION_HEADER = 'x-adc-snapshot-version'
