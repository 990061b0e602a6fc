/**
 * Test support: moto's standalone S3 API server on loopback (installed by scripts/s3/ensure.sh
 * into .cache/s3/venv), for suites that need S3. Imported by tests only.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { resolve } from 'node:path'

const venv = resolve(import.meta.dirname, '../../../.cache/s3/venv')
export const MOTO_SERVER = resolve(venv, 'bin/moto_server')
/** The venv's python, with botocore (a dependency of moto): AWS's own SigV4 signer. */
export const MOTO_PYTHON = resolve(venv, 'bin/python')
export const motoAvailable = existsSync(MOTO_SERVER)

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.once('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => res(port))
    })
  })
}

/** Starts the server on a free loopback port and creates `buckets`; `stop()` ends it. */
export async function startMoto(buckets: string[]): Promise<{ endpoint: string; pid: number; stop(): void }> {
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      // S3 CreateBucket: PUT /<bucket>
      const res = await fetch(`${endpoint}/${buckets[0]}`, { method: 'PUT' })
      if (res.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM')
      throw new Error('S3 test server did not start')
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  for (const b of buckets.slice(1)) await fetch(`${endpoint}/${b}`, { method: 'PUT' })
  return { endpoint, pid: child.pid!, stop: () => void child.kill('SIGTERM') }
}
