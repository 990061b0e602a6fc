import type { Logger } from 'pino'
import { eraseFromLake, type LakeSubject } from '../lake/erase.js'
import type { LakeTable } from '../lake/table.js'
import type { RawEraser } from './erase.js'

/**
 * The Iceberg raw table's eraser: the subject's rows are rewritten out of the table's data files and
 * the old files deleted from storage (lake/erase.ts). `done` once no file any snapshot reaches holds
 * them; `pending` while a tag or branch other than main still holds such a file, or when the erasure
 * failed (logged as lake_erasure_failed): the audit row is still written, and its `pending` is the
 * backlog the lake upkeep runs again (privacy/retry.ts, by the identifier's SHA-256: `eraseStored`).
 */
export function icebergEraser(lake: LakeTable, { logger }: { logger?: Logger } = {}): RawEraser {
  async function run(subject: LakeSubject): Promise<'done' | 'pending'> {
    try {
      const r = await eraseFromLake(lake, subject)
      logger?.info({ publisherId: subject.publisherId, ...r }, 'lake erasure done')
      return r.status
    } catch (err) {
      logger?.error({ err, reason: 'lake_erasure_failed', publisherId: subject.publisherId }, 'lake erasure failed; recorded as pending')
      return 'pending'
    }
  }
  return {
    name: 'iceberg',
    erase: (subject) =>
      run({ publisherId: subject.publisherId, column: subject.userKey !== undefined ? 'user_key' : 'ip_hash', value: subject.userKey ?? subject.ipHash! }),
    eraseStored: (stored) =>
      run({ publisherId: stored.publisherId, column: stored.subject === 'userKey' ? 'user_key' : 'ip_hash', sha256: stored.subjectSha256 }),
  }
}
