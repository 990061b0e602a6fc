/**
 * Runs the edge Worker locally in workerd through wrangler's `unstable_startWorker`, without the
 * devtools inspector by default: under `wrangler dev` the inspector relays every outbound fetch's
 * network events through wrangler's proxy, which cost about half of the edge's CPU. `wrangler dev`
 * has no flag to turn it off (only `--inspector-port`), hence this runner.
 *
 *   node --import tsx scripts/edge-dev.ts --port 8787 [--persist-to dir] [--vars-file vars.json] [--var NAME:value]...
 *
 * `ADC_EDGE_INSPECT=1` keeps the inspector (Chrome devtools on `--inspector-port`, or a free port),
 * for debugging. Prints `ready <url>` on stdout once the Worker answers; SIGTERM/SIGINT dispose it.
 * Used by `npm start` and by edge/test/wrangler-dev.ts (browser, end-to-end tests and benches).
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { unstable_startWorker } from 'wrangler'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: resolve(ROOT, 'wrangler.toml') },
    ip: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8787' },
    'inspector-port': { type: 'string' },
    'persist-to': { type: 'string' },
    'vars-file': { type: 'string' },
    var: { type: 'string', multiple: true, default: [] },
    'log-level': { type: 'string', default: 'warn' },
  },
})

const vars: Record<string, string> = {}
if (values['vars-file']) Object.assign(vars, JSON.parse(readFileSync(values['vars-file'], 'utf8')) as Record<string, string>)
for (const v of values.var) {
  const at = v.indexOf(':')
  if (at > 0) vars[v.slice(0, at)] = v.slice(at + 1)
}

const inspect = process.env.ADC_EDGE_INSPECT === '1' || process.env.ADC_EDGE_INSPECT === 'true'
const worker = await unstable_startWorker({
  config: values.config,
  bindings: Object.fromEntries(Object.entries(vars).map(([k, value]) => [k, { type: 'plain_text' as const, value }])),
  sendMetrics: false,
  dev: {
    server: { hostname: values.ip, port: Number(values.port) },
    inspector: inspect ? { hostname: '127.0.0.1', ...(values['inspector-port'] ? { port: Number(values['inspector-port']) } : {}) } : false,
    persist: values['persist-to'] ?? resolve(ROOT, '.wrangler/state'),
    logLevel: values['log-level'] as 'warn',
    watch: false,
    liveReload: false,
    remote: false,
    enableContainers: false,
  },
})
await worker.ready
const url = await worker.url
process.stdout.write(`ready ${url.origin}${inspect ? ` inspector ${(await worker.inspectorUrl)?.href ?? ''}` : ''}\n`)

let stopping = false
async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  await worker.dispose().catch(() => undefined)
  process.exit(0)
}
process.on('SIGTERM', () => void stop())
process.on('SIGINT', () => void stop())
