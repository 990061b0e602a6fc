import { describe, expect, it } from 'vitest'
import { PassThrough } from 'node:stream'
import { createLogger } from './logger.js'

describe('createLogger', () => {
  it('writes one JSON object per line with level, name and time', async () => {
    const out = new PassThrough()
    const chunks: string[] = []
    out.on('data', (d: Buffer) => chunks.push(String(d)))
    const logger = createLogger({ name: 'adc-test', destination: out })
    logger.child({ component: 'processor' }).info({ partition: 3 }, 'batch written')
    await new Promise((r) => setImmediate(r))
    const line = JSON.parse(chunks.join('').trim()) as Record<string, unknown>
    expect(line).toMatchObject({ level: 30, name: 'adc-test', component: 'processor', partition: 3, msg: 'batch written' })
    expect(typeof line.time).toBe('string')
  })
})
