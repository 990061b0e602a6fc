import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { BINARY_V2_CONTENT_TYPE, binaryRecord } from '@adc/schemas'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseDocument } from 'yaml'
import { createInternalApp } from '../gateway/internal-app.js'
import { createEmbeddedLog } from '../log/embedded-log.js'
import type { Log } from '../log/log.js'
import { createLogger } from '../logger.js'
import { createMetricsRegistry } from '../metrics/registry.js'
import { DEMO_DEFAULTS, openTenantStore, seedDemoTenant, type TenantStore } from '../tenants/tenant-store.js'
import { describeNeeding } from '../testing/needs.js'

/**
 * The compose stack's front door (the `caddyfile` config of docker-compose.yml) run by a real Caddy
 * (Debian's `caddy` package; `.ci/run` installs it) in front of core's internal app on loopback:
 * Caddy's own parser says it serves the public host on 443 with automatic HTTPS, and its routes let
 * through the edge's produce calls and config pull and nothing else of the internal port.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const caddy = process.env.CADDY_PATH ?? (spawnSync('sh', ['-c', 'command -v caddy'], { encoding: 'utf8' }).stdout.trim() || undefined)
const compose = parseDocument(readFileSync(join(root, 'docker-compose.yml'), 'utf8')).toJS() as { configs: Record<string, { content: string }> }

/** Compose's `${NAME:-default}` interpolation with the given variables. */
function caddyfile(vars: Record<string, string>): string {
  return compose.configs.caddyfile!.content.replace(/\$\{([A-Za-z_]\w*)(?::?-([^}]*))?\}/g, (_, name: string, fallback?: string) => vars[name] || (fallback ?? ''))
}

function freePort(): Promise<number> {
  return new Promise((ok) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => ok(port))
    })
  })
}

const needCaddy = { what: 'Caddy (`caddy` on PATH, or CADDY_PATH)', available: caddy !== undefined, howTo: 'install Debian `caddy` (.ci/run does) or set CADDY_PATH' }

describeNeeding('front door', needCaddy, () => {
  const dir = mkdtempSync(join(tmpdir(), 'adc-front-door-'))
  const creds = { user: 'edge_front_test', password: 'front-door-password' }
  let log: Log
  let tenants: TenantStore
  let internal: Server
  let proxy: ChildProcess
  let base = ''

  beforeAll(async () => {
    log = await createEmbeddedLog({ dir: join(dir, 'log') })
    await log.ensureTopic('ad-events', 2)
    tenants = openTenantStore({ dir: join(dir, 'tenants') })
    await seedDemoTenant(tenants, DEMO_DEFAULTS)
    const app = createInternalApp({
      gateway: { log, topics: ['ad-events', 'edge-stats'], credentials: creds },
      tenants, edgeSyncKey: 'edge_sync_front', registry: createMetricsRegistry({ defaultMetrics: false }), logger: createLogger({ level: 'silent' }),
    })
    internal = await new Promise<Server>((ok) => {
      const srv = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => ok(srv as Server))
    })
    const internalPort = (internal.address() as { port: number }).port
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    // The compose routes as they are, with loopback addresses for the site and for core's service name.
    const file = join(dir, 'Caddyfile')
    writeFileSync(file, `{\n\tadmin off\n}\n${caddyfile({ ADC_PUBLIC_HOST: base }).replaceAll('core:8789', `127.0.0.1:${internalPort}`)}`)
    proxy = spawn(caddy!, ['run', '--config', file, '--adapter', 'caddyfile'], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir } })
    for (let i = 0; i < 100; i++) {
      if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) return
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error('caddy did not start')
  })
  afterAll(async () => {
    proxy?.kill('SIGTERM')
    await new Promise<void>((ok) => (internal ? internal.close(() => ok()) : ok()))
    await log?.close()
    await tenants?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  describe('front door (Caddy)', () => {
    it('serves the public host on 443 with automatic HTTPS, as Caddy itself reads the file', () => {
      const file = join(dir, 'Caddyfile.public')
      writeFileSync(file, caddyfile({ ADC_PUBLIC_HOST: 'collector.example.com' }))
      const adapted = JSON.parse(execFileSync(caddy!, ['adapt', '--config', file, '--adapter', 'caddyfile'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as {
        apps: { http: { servers: Record<string, { listen: string[]; routes: { match?: { host?: string[] }[] }[]; automatic_https?: { disable?: boolean } }> } }
      }
      const servers = Object.values(adapted.apps.http.servers)
      expect(servers).toHaveLength(1)
      expect(servers[0]!.listen).toEqual([':443'])
      expect(servers[0]!.automatic_https?.disable).not.toBe(true)
      expect(servers[0]!.routes[0]!.match?.[0]?.host).toEqual(['collector.example.com'])
    })

    it("passes the edge's produce calls to the gateway, which checks their credentials", async () => {
      const body = JSON.stringify({ records: [binaryRecord('imp_front_1', { v: 1 })] })
      const post = (authorization?: string) => fetch(`${base}/topics/ad-events`, {
        method: 'POST', body, headers: { 'content-type': BINARY_V2_CONTENT_TYPE, ...(authorization ? { authorization } : {}) },
      })
      expect((await post()).status).toBe(401)
      const ok = await post(`Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}`)
      expect(ok.status).toBe(200)
      expect([...(await log.endOffsets('ad-events')).values()].reduce((a, b) => a + b, 0)).toBe(1)
    })

    it("passes the edge's config pull, which core checks against EDGE_SYNC_KEY", async () => {
      expect((await fetch(`${base}/v1/internal/edge-config`, { headers: { authorization: 'Bearer edge_sync_front' } })).status).toBe(200)
      expect((await fetch(`${base}/v1/internal/edge-config`)).status).toBe(401)
    })

    it("passes produce calls to the edge's two topics only, never to core's own topics (tenants, billing jobs, state, leases)", async () => {
      // Confluent's proxy (ADC_LOG_PROXY) produces to any topic of the cluster: a tenant command on
      // adc-tenants would make any key an admin. So the front door names the topics itself.
      const body = JSON.stringify({ records: [binaryRecord('x', { op: 'addKey', principal: { kind: 'admin', id: 'x' }, hash: 'h', scope: 'server' })] })
      const authorization = `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}`
      for (const topic of ['adc-tenants', 'adc-billing-jobs', 'adc-state-changelog', 'adc-lease.adc.billing-scheduler', 'ad-events/partitions/0']) {
        const res = await fetch(`${base}/topics/${topic}`, { method: 'POST', body, headers: { 'content-type': BINARY_V2_CONTENT_TYPE, authorization } })
        expect(res.status, topic).toBe(404)
        expect(await res.text(), topic).toBe('not found')
      }
      // Reads of the proxy's metadata are not the edge's either.
      expect((await fetch(`${base}/topics/ad-events`, { headers: { authorization } })).status).toBe(404)
    })

    it('answers 404 to the rest of the internal port and to the API', async () => {
      for (const path of ['/metrics', '/topics', '/v1/campaigns', '/dashboard', '/openapi.json']) {
        const res = await fetch(`${base}${path}`)
        expect(res.status, path).toBe(404)
        expect(await res.text(), path).toBe('not found')
      }
      // The internal port itself does serve /metrics: the 404 is the front door's.
      const internalPort = (internal.address() as { port: number }).port
      expect((await fetch(`http://127.0.0.1:${internalPort}/metrics`)).status).toBe(200)
    })
  })
})
