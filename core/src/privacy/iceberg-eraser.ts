import { eraseFromLake } from '../lake/erase.js'
import type { LakeTable } from '../lake/table.js'
import type { RawEraser } from './erase.js'

/**
 * The Iceberg raw table's eraser: the subject's rows are rewritten out of the table's data files and
 * the old files deleted from storage (lake/erase.ts). `done` once no file any snapshot reaches holds
 * them; `pending` while a tag or branch other than main still holds such a file.
 */
export function icebergEraser(lake: LakeTable): RawEraser {
  return {
    name: 'iceberg',
    async erase(subject) {
      const column = subject.userKey !== undefined ? 'user_key' : 'ip_hash'
      const r = await eraseFromLake(lake, { publisherId: subject.publisherId, column, value: subject.userKey ?? subject.ipHash! })
      return r.status
    },
  }
}
