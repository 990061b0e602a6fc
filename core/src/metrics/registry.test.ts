import { describe, expect, it } from 'vitest'
import { createMetricsRegistry, processorMetrics } from './registry.js'

describe('metrics registry', () => {
  it('holds the processor metrics once, however many processors register, and renders them for Prometheus', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false })
    const a = processorMetrics(registry)
    const b = processorMetrics(registry)
    expect(b.events).toBe(a.events)
    a.lag.set({ topic: 'ad-events', partition: '2' }, 17)
    a.events.inc({ topic: 'ad-events', outcome: 'unbilled', reason: 'repeat_click' }, 3)
    const text = await registry.metrics()
    expect(text).toContain('adc_processor_lag_records{topic="ad-events",partition="2"} 17')
    expect(text).toContain('adc_processor_events_total{topic="ad-events",outcome="unbilled",reason="repeat_click"} 3')
  })

  it('includes Node process metrics by default', async () => {
    expect(await createMetricsRegistry().metrics()).toContain('process_cpu_user_seconds_total')
  })
})
