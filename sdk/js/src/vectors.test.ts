import { describe, expect, it } from 'vitest'
import signatures from '../../../schemas/vectors/request-signatures.json'
import tokens from '../../../schemas/vectors/tokens.json'
import { createAuthorizer } from './auth.js'
import { mintClickToken, mintPixelToken } from './server/index.js'

/** The shared vectors (schemas/vectors) through the SDK's own entry points. */
describe('shared test vectors in the SDK', () => {
  it('the signing authorizer sends the vector signature for its timestamp, body and path', async () => {
    for (const c of signatures.cases) {
      const auth = createAuthorizer({ keyId: 'kv', secret: c.secret }, () => c.timestamp * 1000 + 999)
      const { headers } = await auth.authorize(`http://127.0.0.1:8787${c.path}?ignored=1`, c.body)
      expect(headers).toMatchObject({ 'x-adc-key-id': 'kv', 'x-adc-timestamp': String(c.timestamp), 'x-adc-signature': c.signature })
    }
  })

  it('the server helpers mint the vector pixel and click tokens', async () => {
    for (const c of tokens.valid) {
      const { url, ...fields } = c.payload as typeof c.payload & { url?: string; channel?: 'web' | 'app' | 'ctv' | 's2s' }
      const key = { keyId: c.keyId, secret: c.secret }
      const token = c.kind === 'click' ? await mintClickToken({ ...fields, url: url! }, key) : await mintPixelToken(fields, key)
      expect(token, c.kind).toBe(c.token)
    }
  })
})
