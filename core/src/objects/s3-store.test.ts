import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MOTO_PYTHON, startMoto } from '../testing/moto.js'
import { describeNeeding } from '../testing/needs.js'
import { runObjectStoreContract } from '../testing/object-store.contract.js'
import { s3Server } from '../testing/tools.js'
import { ObjectStorageError } from './object-store.js'
import { MAX_PRESIGN_SECONDS, presignS3Get } from './s3.js'
import { createS3ObjectStore } from './s3-store.js'

/**
 * The S3 adapter against a real S3 API server on loopback (moto, as in the Iceberg-on-S3 suite;
 * MinIO in compose). In CI a missing server fails; elsewhere the suite skips.
 *
 * moto serves presigned URLs without checking their signature or expiry, so what S3 and MinIO do
 * with a presigned URL (recompute the signature over the request, refuse it past X-Amz-Expires) is
 * done here by botocore, AWS's own signer, which moto's virtualenv carries: our URL must be the one
 * botocore derives, and any changed part must make botocore's signature differ.
 */
const run = promisify(execFile)
const s3Base = { accessKeyId: 'adc', secretAccessKey: 'adc_secret', region: 'eu-central-1' }

const VERIFY = `
import sys, datetime
from urllib.parse import urlsplit, parse_qsl
import botocore.auth
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, key_id, secret, now_ms = sys.argv[1:5]
u = urlsplit(url)
q = dict(parse_qsl(u.query, keep_blank_values=True))
try:
    cred = q['X-Amz-Credential'].split('/')
    date, expires, given = q['X-Amz-Date'], int(q['X-Amz-Expires']), q['X-Amz-Signature']
except (KeyError, ValueError):
    print('malformed'); sys.exit()
if cred[0] != key_id or q.get('X-Amz-Algorithm') != 'AWS4-HMAC-SHA256' or not 1 <= expires <= 604800:
    print('denied'); sys.exit()
signed_at = datetime.datetime.strptime(date, '%Y%m%dT%H%M%SZ').replace(tzinfo=datetime.timezone.utc)
now = datetime.datetime.fromtimestamp(int(now_ms) / 1000, datetime.timezone.utc)
if now > signed_at + datetime.timedelta(seconds=expires):
    print('expired'); sys.exit()
req = AWSRequest(method='GET', url=f'{u.scheme}://{u.netloc}{u.path}')
# Sign at the URL's own time, as a server re-deriving the signature does.
botocore.auth.get_current_datetime = lambda *a, **k: signed_at.replace(tzinfo=None)
S3SigV4QueryAuth(Credentials(key_id, secret), 's3', cred[2], expires=expires).add_auth(req)
expected = dict(parse_qsl(urlsplit(req.url).query))['X-Amz-Signature']
print('ok' if expected == given else 'signature_mismatch')
`

/** What an S3 server answers a presigned GET with, as botocore computes it. */
async function verify(url: string, nowMs: number): Promise<string> {
  const { stdout } = await run(MOTO_PYTHON, ['-c', VERIFY, url, s3Base.accessKeyId, s3Base.secretAccessKey, String(nowMs)], { timeout: 30_000 })
  return stdout.trim()
}

describeNeeding('object store on S3', s3Server, () => {
  let moto: Awaited<ReturnType<typeof startMoto>>
  let n = 0
  beforeAll(async () => {
    moto = await startMoto(['exports'])
  }, 60_000)
  afterAll(() => moto?.stop())

  const store = (extra: { prefix?: string; listPageSize?: number } = {}) =>
    createS3ObjectStore({ s3: { ...s3Base, endpoint: moto.endpoint }, bucket: 'exports', prefix: `t${n++}/`, ...extra })

  runObjectStoreContract({ name: 'S3 (path-style, SigV4) on an S3 API server', newStore: async () => store() })

  describe('object store on S3', () => {
    it('writes its objects under its prefix in the bucket, and lists past one page', async () => {
      const s = store({ listPageSize: 2 })
      for (const k of ['a/1', 'a/2', 'a/3', 'a/4', 'a/5']) await s.put(k, Buffer.from(k))
      expect((await s.list('a/')).map((o) => o.key)).toEqual(['a/1', 'a/2', 'a/3', 'a/4', 'a/5'])
      const listing = await (await fetch(`${moto.endpoint}/exports?list-type=2&prefix=t${n - 1}/`)).text()
      expect(listing).toContain(`<Key>t${n - 1}/a/3</Key>`)
    })

    it('refuses a prefix without its trailing slash', () => {
      expect(() => createS3ObjectStore({ s3: { ...s3Base, endpoint: moto.endpoint }, bucket: 'exports', prefix: 'exports' })).toThrow(RangeError)
    })

    it('fails with object_storage_error when the bucket does not exist or the server is gone', async () => {
      const missing = createS3ObjectStore({ s3: { ...s3Base, endpoint: moto.endpoint }, bucket: 'no-such-bucket' })
      const err = await missing.put('a.csv', Buffer.from('x')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ObjectStorageError)
      expect((err as ObjectStorageError).reason).toBe('object_storage_error')
      const gone = createS3ObjectStore({ s3: { ...s3Base, endpoint: 'http://127.0.0.1:9' }, bucket: 'exports' })
      await expect(gone.get('a.csv')).rejects.toBeInstanceOf(ObjectStorageError)
    })

    it('presigns a GET URL that fetches the exact bytes, with nothing but the URL', async () => {
      const s = store()
      const body = Buffer.concat([Buffer.from('PAR1'), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('PAR1')])
      await s.put('day=2026-11-20/v2/advertiser-adv:1.parquet', body)
      const url = s.signedUrl('day=2026-11-20/v2/advertiser-adv:1.parquet', 900)!
      expect(url).toMatch(/X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=[0-9a-f]{64}$/)
      const res = await fetch(url)
      expect(res.status).toBe(200)
      const got = Buffer.from(await res.arrayBuffer())
      expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'))
    })

    it('signs exactly as AWS does, and a tampered or expired URL is refused', async () => {
      const now = Date.parse('2026-12-01T10:00:00Z')
      const s3 = { ...s3Base, endpoint: moto.endpoint }
      const url = presignS3Get(s3, { bucket: 'exports', key: 'day=2026-11-20/v2/publisher-pub_1.csv', expiresInSeconds: 600, now })
      expect(await verify(url, now)).toBe('ok')
      expect(await verify(url, now + 600_000)).toBe('ok')
      expect(await verify(url, now + 601_000)).toBe('expired')
      // Another tenant's file under the same signature, a longer life, a changed signature.
      expect(await verify(url.replace('publisher-pub_1', 'publisher-pub_2'), now)).toBe('signature_mismatch')
      expect(await verify(url.replace('X-Amz-Expires=600', 'X-Amz-Expires=6000'), now)).toBe('signature_mismatch')
      const flipped = url.slice(0, -1) + (url.endsWith('0') ? '1' : '0')
      expect(await verify(flipped, now)).toBe('signature_mismatch')
      // A public endpoint is part of what is signed.
      const pub = presignS3Get(s3, { bucket: 'exports', key: 'a.csv', expiresInSeconds: 60, now, endpoint: 'http://127.0.0.1:9000' })
      expect(pub.startsWith('http://127.0.0.1:9000/exports/a.csv?')).toBe(true)
      expect(await verify(pub, now)).toBe('ok')
      expect(await verify(pub.replace('127.0.0.1:9000', moto.endpoint.slice(7)), now)).toBe('signature_mismatch')
    })

    it('bounds the expiry to what SigV4 allows', () => {
      const s3 = { ...s3Base, endpoint: moto.endpoint }
      for (const bad of [0, -1, MAX_PRESIGN_SECONDS + 1, Number.NaN]) {
        expect(() => presignS3Get(s3, { bucket: 'exports', key: 'a.csv', expiresInSeconds: bad })).toThrow(RangeError)
      }
    })
  })
})
