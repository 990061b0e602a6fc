import { pino, type Logger, type LoggerOptions } from 'pino'

export type { Logger }

export interface LoggerConfig {
  /** pino level (`LOG_LEVEL`). @default 'info' */
  level?: string
  /** Component name put on every line. @default 'adc-core' */
  name?: string
  /** Where lines go; tests pass a stream to read them back. @default stdout */
  destination?: NodeJS.WritableStream
}

/** One structured JSON logger for core; components take `logger.child({ component })`. */
export function createLogger({ level = 'info', name = 'adc-core', destination }: LoggerConfig = {}): Logger {
  const options: LoggerOptions = { level, name, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }
  return destination ? pino(options, destination) : pino(options)
}
