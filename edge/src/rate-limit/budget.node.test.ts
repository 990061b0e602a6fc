import { ID_PATTERN } from '@adc/schemas'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CREDENTIALS } from '../context.js'
import { budgetName } from './budget.js'

describe('budget names', () => {
  it("keep the server key's original name and give no two publishers' budgets the same name", () => {
    expect(budgetName('pub_a', 'server_key')).toBe('pub:pub_a')
    // A publisher id may hold a colon: "x:public_key" is a valid id, and not x's public-key budget.
    expect(ID_PATTERN.test('x:public_key')).toBe(true)
    const id = fc.stringMatching(ID_PATTERN)
    fc.assert(
      fc.property(id, id, fc.constantFrom(...CREDENTIALS), fc.constantFrom(...CREDENTIALS), (a, b, ka, kb) => {
        if (a !== b || ka !== kb) expect(budgetName(a, ka)).not.toBe(budgetName(b, kb))
      }),
      { numRuns: 2000, examples: [['x', 'x:public_key', 'public_key', 'server_key'], ['x', 'x:token', 'token', 'server_key']] },
    )
  })
})
