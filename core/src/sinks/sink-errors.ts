/**
 * Why a sink write failed: for its content (the engine refused the rows: parse or type errors), or
 * for infrastructure (connection, timeout, engine down, memory, anything else). Content failures
 * repeat for ever on the same rows, so the processor isolates the records behind them; any other
 * failure is retried with the whole batch.
 */
export type SinkFailureKind = 'content' | 'infrastructure'

export interface SinkFailure {
  kind: SinkFailureKind
  /** ClickHouse error code, when the engine answered one. */
  code?: number
  /** ClickHouse error name (`CANNOT_PARSE_ESCAPE_SEQUENCE`), when known. */
  type?: string
  message: string
}

/**
 * ClickHouse error codes (src/Common/ErrorCodes.cpp) that mean "these rows cannot be stored as they
 * are": the input format could not parse them or a value does not fit its column. Measured on chDB:
 * a lone surrogate escape in JSONEachRow is 25, a year past 9999 in a DateTime64 TSV field is 41.
 */
const CONTENT_CODES: Record<number, string> = {
  6: 'CANNOT_PARSE_TEXT',
  25: 'CANNOT_PARSE_ESCAPE_SEQUENCE',
  26: 'CANNOT_PARSE_QUOTED_STRING',
  27: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
  32: 'ATTEMPT_TO_READ_AFTER_EOF',
  38: 'CANNOT_PARSE_DATE',
  41: 'CANNOT_PARSE_DATETIME',
  53: 'TYPE_MISMATCH',
  69: 'ARGUMENT_OUT_OF_BOUND',
  70: 'CANNOT_CONVERT_TYPE',
  72: 'CANNOT_PARSE_NUMBER',
  117: 'INCORRECT_DATA',
  131: 'TOO_LARGE_STRING_SIZE',
  321: 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
  349: 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN',
  407: 'DECIMAL_OVERFLOW',
  467: 'CANNOT_PARSE_BOOL',
  691: 'UNKNOWN_ELEMENT_OF_ENUM',
}

/** The engine's numeric code: `ClickHouseError.code` ('25'), chDB's `clickhouseCode`, or `Code: 25.` in the text. */
function engineCode(err: Record<string, unknown>, message: string): number | undefined {
  for (const v of [err.clickhouseCode, err.code]) {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined
    if (n !== undefined) return n
  }
  const m = /\bCode: (\d+)\./.exec(message)
  return m ? Number(m[1]) : undefined
}

export function classifySinkError(err: unknown): SinkFailure {
  if (err instanceof SinkWriteError) return err.failure
  const message = err instanceof Error ? err.message : String(err)
  const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string, unknown>
  const code = engineCode(e, message)
  const type = typeof e.type === 'string' ? e.type : /\(([A-Z][A-Z0-9_]+)\)/.exec(message)?.[1] ?? (code !== undefined ? CONTENT_CODES[code] : undefined)
  const kind: SinkFailureKind = code !== undefined && code in CONTENT_CODES ? 'content' : 'infrastructure'
  return { kind, ...(code !== undefined ? { code } : {}), ...(type ? { type } : {}), message: message.slice(0, 2000) }
}

/** A sink's write (or probe) failed; says which sink and how (see classifySinkError). */
export class SinkWriteError extends Error {
  readonly failure: SinkFailure
  readonly retriable: boolean
  constructor(readonly sink: string, cause: unknown) {
    const failure = classifySinkError(cause)
    super(`${sink} sink: ${failure.message}`, { cause })
    this.name = 'SinkWriteError'
    this.failure = failure
    // A content failure repeats on the same rows; the processor isolates them instead of retrying.
    this.retriable = failure.kind === 'infrastructure'
  }
}
