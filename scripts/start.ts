/**
 * `npm start`: runs the whole system on one machine with the embedded defaults.
 * Core (embedded log, processor, chDB, API, dashboard on its public port; REST proxy gateway, edge
 * config and /metrics on its internal port) starts first and seeds the demo tenant; then the edge
 * runs in workerd (scripts/edge-dev.ts, wrangler without the inspector), pointed at the internal port with the proxy credentials.
 * Ctrl-C stops both.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEV_DEFAULTS, OPTIONAL_DEV_DEFAULTS } from '../core/src/config.js'
import { CORE_NODE_FLAGS } from '../core/src/node-flags.js'

const env = { ...process.env }
const corePort = Number(env.CORE_PORT ?? 8788)
const internalPort = Number(env.INTERNAL_PORT ?? 8789)
const edgePort = Number(env.EDGE_PORT ?? 8787)
const coreUrl = `http://127.0.0.1:${corePort}`
const internalUrl = `http://127.0.0.1:${internalPort}`
const edgeUrl = `http://127.0.0.1:${edgePort}`
const children: ChildProcess[] = []

function run(name: string, cmd: string, args: string[], extraEnv: Record<string, string>): ChildProcess {
  const child = spawn(cmd, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'inherit', 'inherit'] })
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${signal ?? code}); stopping`)
      void stop(1)
    }
  })
  children.push(child)
  return child
}

async function waitFor(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url)
      if (res.ok) return
    } catch {
      // not listening yet
    }
    await sleep(250)
  }
  throw new Error(`${url} did not become healthy within ${timeoutMs} ms`)
}

let stopping = false
async function stop(code: number): Promise<never> {
  stopping = true
  for (const c of children) c.kill('SIGTERM')
  await sleep(1500)
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  process.exit(code)
}
process.on('SIGINT', () => void stop(0))
process.on('SIGTERM', () => void stop(0))

const key = (name: keyof typeof DEV_DEFAULTS | keyof typeof OPTIONAL_DEV_DEFAULTS) =>
  env[name] ?? (name in DEV_DEFAULTS ? DEV_DEFAULTS[name as keyof typeof DEV_DEFAULTS] : OPTIONAL_DEV_DEFAULTS[name as keyof typeof OPTIONAL_DEV_DEFAULTS])

run('core', process.execPath, [...CORE_NODE_FLAGS, '--import', 'tsx', 'core/src/main.ts'], { CORE_PORT: String(corePort), INTERNAL_PORT: String(internalPort) })
await waitFor(`${coreUrl}/healthz`, 120_000)
await waitFor(`${internalUrl}/healthz`, 10_000)

// scripts/edge-dev.ts: workerd without the devtools inspector (ADC_EDGE_INSPECT=1 keeps it, for debugging).
run('edge', process.execPath, [
  '--import', 'tsx', 'scripts/edge-dev.ts', '--config', 'wrangler.toml', '--ip', '127.0.0.1', '--port', String(edgePort),
  '--persist-to', `${env.DATA_DIR ?? '.data'}/wrangler`,
  '--var', `REST_PROXY_URL:${internalUrl}`, '--var', `CORE_URL:${internalUrl}`, '--var', `EDGE_SYNC_KEY:${key('EDGE_SYNC_KEY')}`,
  '--var', `REST_PROXY_USER:${key('REST_PROXY_USER')}`, '--var', `REST_PROXY_PASSWORD:${key('REST_PROXY_PASSWORD')}`,
], { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' })
await waitFor(`${edgeUrl}/healthz`, 120_000)

console.log(`
  ad event collector is running

  edge (workerd)      ${edgeUrl}
  core API            ${coreUrl}/v1
  dashboard           ${coreUrl}/dashboard
  OpenAPI             ${coreUrl}/openapi.json
  REST proxy          ${internalUrl}/topics   (internal port: the edge's front door to the log)
  proxy credentials   ${key('REST_PROXY_USER')} / ${key('REST_PROXY_PASSWORD')}   (HTTP Basic)
  edge config         ${internalUrl}/v1/internal/edge-config   (Bearer ${key('EDGE_SYNC_KEY')})
  Prometheus          ${internalUrl}/metrics

  demo publisher key  ${key('DEMO_PUBLISHER_KEY')}   (publisher pub_demo, server scope: batch routes)
  demo public key     ${key('DEMO_PUBLIC_KEY')}   (public scope: tag data-key, beacon ?k=)
  demo advertiser key ${key('DEMO_ADVERTISER_KEY')}   (advertiser adv_demo: cmp_demo_cpm, cmp_demo_cpc)
  demo signing secret ${key('DEMO_SIGNING_SECRET')}   (token key id demo: click and pixel tokens)
  demo request secret ${key('DEMO_REQUEST_SIGNING_SECRET')}   (request key id demo_request, app scope: X-Adc-Signature; clicks need their clickToken)
  demo admin key      ${key('DEMO_ADMIN_KEY')}
`)
