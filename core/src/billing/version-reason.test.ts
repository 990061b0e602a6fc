import { describe, expect, it } from 'vitest'
import { reasonFor } from './version-reason.js'

describe('reasonFor', () => {
  it('shows an admin the reason as stored', () => {
    expect(reasonFor('admin', 're-close: 1234 events of the day were received or judged after v2')).toBe('re-close: 1234 events of the day were received or judged after v2')
  })

  it("never shows a tenant the day's event count, an operator's words or id", () => {
    const cases: Array<[string, string]> = [
      ['re-close: 1234 events of the day were received or judged after v2', 're-close: events of the day were received or judged after v2'],
      ['promoted reprocess 01JDAY (ivt-2026.12.1, attr-2): publisher pub_9 ran a click farm', 'promoted reprocess 01JDAY (ivt-2026.12.1, attr-2)'],
      ['manual close by adm_ops_anna', 'close requested by an operator'],
      ['re-close: 7 events of the day were received or judged after v3; kept the promoted IVT model ivt-2026.12.1 of final v3 (job 01JX)', 're-close: events of the day were received or judged after v3; kept the promoted IVT model ivt-2026.12.1 of final v3 (job 01JX)'],
      ['ticket 42; kept the promoted IVT model ivt-2026.12.1 of final v2 (job 01JY)', 'close requested by an operator; kept the promoted IVT model ivt-2026.12.1 of final v2 (job 01JY)'],
      ['customer asked; see ticket 42 about advertiser adv_other', 'close requested by an operator'],
      // The note's words inside an operator's free text are the operator's, not the system's note.
      ['promoted reprocess 01JDAY (ivt-2026.12.1): fraud; kept the promoted IVT model after adv_b disputed 12000 clicks of pub_9', 'promoted reprocess 01JDAY (ivt-2026.12.1)'],
      ['manual close by adm_ops_anna; kept the promoted IVT model x of final v2 (job 01JY) for adv_b', 'close requested by an operator'],
      [
        're-close: 7 events of the day were received or judged after v3; kept the promoted IVT model ivt-2026.12.1 and attribution rules attr-2026.12.1 of final v3 (job 01JX); that job records no attribution rules for the day: default attribution windows',
        're-close: events of the day were received or judged after v3; kept the promoted IVT model ivt-2026.12.1 and attribution rules attr-2026.12.1 of final v3 (job 01JX); that job records no attribution rules for the day: default attribution windows',
      ],
      ['scheduled close (T+1): incomplete until the watermark passes the day end plus the lateness horizon', 'scheduled close (T+1): incomplete until the watermark passes the day end plus the lateness horizon'],
      ['close: the watermark passed the day end plus the lateness horizon; supersedes the scheduled close v1', 'close: the watermark passed the day end plus the lateness horizon; supersedes the scheduled close v1'],
    ]
    for (const viewer of ['advertiser', 'publisher'] as const) {
      for (const [stored, shown] of cases) expect(reasonFor(viewer, stored)).toBe(shown)
    }
  })
})
