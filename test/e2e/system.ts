/**
 * Starts the real system for end-to-end tests: core (main.ts: gateway, embedded log, processor,
 * chDB, API) and the edge in workerd through `wrangler dev`, on free loopback ports, with a fresh
 * data directory. Everything is reached over HTTP only: core's public port (API) and its internal
 * port (REST proxy gateway with HTTP Basic, the edge's config pull, /metrics).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { freePort, startWranglerDev, type WranglerDev } from '../../edge/test/wrangler-dev.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEV_DEFAULTS } from '../../core/src/config.js'
import type { CreatedPublisher as StoreCreatedPublisher } from '../../core/src/tenants/tenant-store.js'
import { CORE_NODE_FLAGS } from '../../core/src/node-flags.js'

export const ROOT = resolve(import.meta.dirname, '../..')

export async function waitHealthy(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}`)
    try {
      const res = await fetch(url)
      if (res.ok) return
    } catch {
      // not up yet
    }
    await sleep(200)
  }
  throw new Error(`${url} not healthy after ${timeoutMs} ms`)
}

export interface Proc {
  child: ChildProcess
  output: () => string
  stop(signal?: NodeJS.Signals): Promise<void>
}

export function startProcess(cmd: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (b: Buffer) => {
    out += b.toString()
    if (out.length > 200_000) out = out.slice(-100_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return {
    child,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((r) => child.once('exit', () => r()))
      child.kill(signal)
      await Promise.race([exited, sleep(10_000)])
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exited
      }
    },
  }
}

export interface CoreHandle extends Proc {
  /** Public port: API, dashboard, /healthz. */
  url: string
  port: number
  /** Internal port: REST proxy gateway (HTTP Basic), edge config pull, /metrics, /healthz. */
  internalUrl: string
  /** The REST proxy credentials core was started with. */
  proxyAuth: { user: string; password: string }
  dataDir: string
}

/** The demo tenant's admin key (development defaults). */
export const DEV_ADMIN_KEY = 'admin_demo_dev'
/** A desktop Safari's user agent: a person's browser, which no IVT rule flags. */
export const BROWSER_UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15'

/** What `POST /v1/admin/publishers` answers: the new publisher's id and keys, each shown once. */
export type CreatedPublisher = Omit<StoreCreatedPublisher, 'publisher'> & { id: string }

/**
 * A call to core's public API with an admin key (the demo tenant's by default): its status and JSON
 * body, whatever the status.
 */
export async function adminCall(core: Pick<CoreHandle, 'url'>, method: string, path: string, body?: unknown, key = DEV_ADMIN_KEY): Promise<{ status: number; body: any }> {
  const res = await fetch(`${core.url}${path}`, {
    method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, body: await res.json() }
}

/** `Authorization: Basic` for the REST proxy gateway. */
export function basicAuth({ user, password }: { user: string; password: string }): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

/**
 * Core's per-key API budget lifted (API_RATE_LIMIT_*, api/key-limit.ts), for benches that poll the
 * API as fast as they can on purpose to time what they measure.
 */
export const BENCH_API_LIMIT = { API_RATE_LIMIT_PER_SECOND: '1000000', API_RATE_LIMIT_BURST: '1000000' }

export async function startCore(env: Record<string, string> = {}, dataDir?: string): Promise<CoreHandle> {
  // Inside the repository: chDB reads the Iceberg table (icebergLocal) only under its working directory.
  mkdirSync(join(ROOT, '.cache', 'e2e'), { recursive: true })
  const dir = dataDir ?? mkdtempSync(join(ROOT, '.cache', 'e2e', 'core-'))
  // freePort's port is not reserved: a test running beside this one can take it first; only that
  // race is worth another port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCoreOnce(env, dir)
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err
    }
  }
}

async function startCoreOnce(env: Record<string, string>, dir: string): Promise<CoreHandle> {
  const [port, internalPort] = [await freePort(), await freePort()]
  const proc = startProcess(process.execPath, [...CORE_NODE_FLAGS, '--import', 'tsx', 'core/src/main.ts'], {
    // The embedded log unless a test asks for Kafka: a broker that `npm test` started for the Kafka
    // suites must not carry other tests' topics (tenants, events) into this core.
    CORE_PORT: String(port), INTERNAL_PORT: String(internalPort), DATA_DIR: dir, LOG_LEVEL: 'warn', ADC_ENV: 'development', KAFKA_BROKERS: '', ...env,
  })
  const url = `http://127.0.0.1:${port}`
  const internalUrl = `http://127.0.0.1:${internalPort}`
  try {
    await waitHealthy(`${url}/healthz`, 90_000, proc.child)
    await waitHealthy(`${internalUrl}/healthz`, 10_000, proc.child)
  } catch (err) {
    await proc.stop('SIGKILL')
    throw new Error(`${(err as Error).message}\n${proc.output()}`)
  }
  const proxyAuth = { user: env.REST_PROXY_USER ?? DEV_DEFAULTS.REST_PROXY_USER, password: env.REST_PROXY_PASSWORD ?? DEV_DEFAULTS.REST_PROXY_PASSWORD }
  return { ...proc, url, port, internalUrl, proxyAuth, dataDir: dir }
}

export type EdgeHandle = WranglerDev

/** The edge in workerd (`wrangler dev`), pointed at core's internal port for the REST proxy and tenant config. */
export function startEdge(core: Pick<CoreHandle, 'internalUrl' | 'proxyAuth'>, vars: Record<string, string> = {}): Promise<EdgeHandle> {
  return startWranglerDev({
    REST_PROXY_URL: core.internalUrl, CORE_URL: core.internalUrl,
    REST_PROXY_USER: core.proxyAuth.user, REST_PROXY_PASSWORD: core.proxyAuth.password,
    EDGE_CONFIG_TTL_MS: '1000', ...vars,
  }, 120_000)
}

/** Polls `read` until `done(value)` or the timeout; returns the last value either way. */
export async function eventually<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = await read()
  while (!done(last) && Date.now() < deadline) {
    await sleep(250)
    last = await read()
  }
  return last
}
