import type { Logger } from 'pino'
import { eraseFromLake } from '../lake/erase.js'
import type { LakeTable } from '../lake/table.js'
import type { RawEraser } from './erase.js'

/**
 * The Iceberg raw table's eraser: the subject's rows are rewritten out of the table's data files and
 * the old files deleted from storage (lake/erase.ts). `done` once no file any snapshot reaches holds
 * them; `pending` while a tag or branch other than main still holds such a file, or when the erasure
 * failed (logged as lake_erasure_failed): the audit row is still written, and its `pending` is the
 * backlog to run again.
 */
export function icebergEraser(lake: LakeTable, { logger }: { logger?: Logger } = {}): RawEraser {
  return {
    name: 'iceberg',
    async erase(subject) {
      const column = subject.userKey !== undefined ? 'user_key' : 'ip_hash'
      try {
        const r = await eraseFromLake(lake, { publisherId: subject.publisherId, column, value: subject.userKey ?? subject.ipHash! })
        logger?.info({ publisherId: subject.publisherId, ...r }, 'lake erasure done')
        return r.status
      } catch (err) {
        logger?.error({ err, reason: 'lake_erasure_failed', publisherId: subject.publisherId }, 'lake erasure failed; recorded as pending')
        return 'pending'
      }
    },
  }
}
