import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.once('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a ? a.port : 0
      s.close(() => res(port))
    })
  })
}

export interface WranglerDev {
  url: string
  /** Process id of the runner (its process tree includes workerd), for CPU accounting. */
  pid: number | undefined
  stop: () => Promise<void>
  /** The last 16 kB of the runner's standard error (workerd's messages at `--log-level error`). */
  output: () => string
}

/**
 * Starts the edge in workerd (scripts/edge-dev.ts: wrangler's `unstable_startWorker`, no inspector) on a
 * free loopback port, with the given variables (through a JSON file, so values pass unchanged) and a
 * throwaway state directory. Used by the browser tag test, the end-to-end tests and the benchmarks.
 */
export async function startWranglerDev(vars: Record<string, string>, timeoutMs = 60_000): Promise<WranglerDev> {
  // freePort's port is free when asked but not reserved: a test running beside this one can take it
  // before wrangler binds it. That race, and only that, is worth a fresh pair of ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(vars, timeoutMs)
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/.test((err as Error).message)) throw err
    }
  }
}

async function startOnce(vars: Record<string, string>, timeoutMs: number): Promise<WranglerDev> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'adc-edge-dev-'))
  const varsFile = join(dir, 'vars.json')
  writeFileSync(varsFile, JSON.stringify(vars))
  // scripts/edge-dev.ts: workerd through wrangler without the devtools inspector (it relays every
  // outbound fetch and costs about half the edge's CPU); ADC_EDGE_INSPECT=1 keeps it for debugging.
  const child = spawn(process.execPath, [
    '--import', 'tsx', join(ROOT, 'scripts/edge-dev.ts'), '--config', join(ROOT, 'wrangler.toml'), '--ip', '127.0.0.1', '--port', String(port),
    '--persist-to', join(dir, 'state'), '--vars-file', varsFile, '--log-level', 'error',
  ], { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-16_000)
  })
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL')
          r()
        }, 5000)
        child.once('exit', () => {
          clearTimeout(t)
          r()
        })
      })
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (child.exitCode !== null) break
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { url, pid: child.pid, stop, output: () => stderr }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150))
  }
  await stop()
  throw new Error(`the edge (workerd) did not start: ${stderr}`)
}
