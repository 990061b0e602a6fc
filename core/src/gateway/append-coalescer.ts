import type { AppendResult, Log, ProducerRecord } from '../log/log.js'

interface Waiting {
  records: ProducerRecord[]
  resolve: (r: AppendResult[]) => void
  reject: (err: unknown) => void
}

/**
 * Group commit for the gateway: while one append to a topic is in flight, the appends that arrive
 * meanwhile wait and then go as one `log.append` (one LMDB transaction, one Kafka produce request),
 * each caller getting its own records' results back in order. An append is all-or-nothing, so when
 * a combined append fails every caller in it fails and retries, and none of their records is
 * durable. Under no concurrency each append goes alone, at once.
 */
export class AppendCoalescer {
  private readonly topics = new Map<string, { busy: boolean; queue: Waiting[] }>()

  constructor(private readonly log: Pick<Log, 'append'>, private readonly maxRecords = 10_000) {}

  append(topic: string, records: ProducerRecord[]): Promise<AppendResult[]> {
    let state = this.topics.get(topic)
    if (!state) {
      state = { busy: false, queue: [] }
      this.topics.set(topic, state)
    }
    const s = state
    return new Promise<AppendResult[]>((resolve, reject) => {
      s.queue.push({ records, resolve, reject })
      if (!s.busy) void this.drain(topic, s)
    })
  }

  private async drain(topic: string, s: { busy: boolean; queue: Waiting[] }): Promise<void> {
    s.busy = true
    try {
      while (s.queue.length > 0) {
        const group: Waiting[] = []
        let n = 0
        while (s.queue.length > 0 && (group.length === 0 || n + s.queue[0]!.records.length <= this.maxRecords)) {
          const w = s.queue.shift()!
          group.push(w)
          n += w.records.length
        }
        const all = group.length === 1 ? group[0]!.records : group.flatMap((w) => w.records)
        try {
          const results = await this.log.append(topic, all)
          let at = 0
          for (const w of group) {
            w.resolve(results.slice(at, at + w.records.length))
            at += w.records.length
          }
        } catch (err) {
          for (const w of group) w.reject(err)
        }
      }
    } finally {
      s.busy = false
    }
  }
}
