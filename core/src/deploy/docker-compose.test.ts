import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { isMap, isScalar, parseDocument, type Pair } from 'yaml'
import { EDGE_STATS_TOPIC, EVENTS_TOPIC } from '@adc/schemas'
import { configSchema, loadConfig } from '../config.js'

// No Docker daemon in CI: this checks the compose file's structure and wiring statically.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const text = readFileSync(join(root, 'docker-compose.yml'), 'utf8')
const doc = parseDocument(text)

interface Healthcheck {
  test: string[] | string
  interval?: string
}
interface Service {
  image?: string
  build?: { context: string; dockerfile: string; args?: Record<string, string> }
  ports?: string[]
  environment?: Record<string, string | number | null>
  depends_on?: Record<string, { condition: string }>
  healthcheck?: Healthcheck
  restart?: string
  volumes?: string[]
  command?: string[]
  configs?: { source: string; target: string }[]
}
interface Compose {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
  configs?: Record<string, { content: string }>
}
const compose = doc.toJS() as Compose
const services = compose.services

/**
 * Compose's interpolation of `${NAME}`, `${NAME:-default}` and `$$`, with the variables an operator
 * sets in `.env` (none: the development defaults).
 */
function interpolate(value: string, vars: Record<string, string> = {}): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (m, name: string | undefined, fallback: string | undefined) =>
    m === '$$' ? '$' : (vars[name!] || (fallback ?? '')))
}

/** A service's environment as the container gets it: interpolated, pass-through keys (no value) taken from `vars` or left out. */
const env = (name: string, vars: Record<string, string> = {}): Record<string, string> =>
  Object.fromEntries(Object.entries(services[name]?.environment ?? {}).flatMap(([k, v]) =>
    v === null ? (vars[k] !== undefined ? [[k, vars[k]!]] : []) : [[k, interpolate(String(v), vars)]]))
const config = (name: string, vars: Record<string, string> = {}) => interpolate(compose.configs?.[name]?.content ?? '', vars)

/** What a production `.env` beside docker-compose.yml sets (README "Deploy"). */
const PRODUCTION_ENV = {
  ADC_ENV: 'production', ADC_PUBLIC_HOST: 'collector.example.com', REST_PROXY_USER: 'edge_prod',
  REST_PROXY_PASSWORD: 'a-long-random-proxy-password', EDGE_SYNC_KEY: 'a-long-random-edge-sync-key',
  ADC_BOOTSTRAP_ADMIN_KEY: 'a-long-random-first-admin-key-0001',
}

/** `registry/repository:tag` as Docker resolves a reference: Docker Hub's names get docker.io (and library/). */
function qualified(image: string): string {
  const first = image.split('/')[0]!
  const hasRegistry = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
  if (hasRegistry) return image
  return `docker.io/${image.includes('/') ? image : `library/${image}`}`
}
const knownImages = readFileSync(join(root, 'deploy/images.txt'), 'utf8').split('\n')
  .map((l) => l.replace(/#.*/, '').trim()).filter(Boolean)

/** `host:port` → [host, port]; `PLAINTEXT://kafka:9092` → listener name, host, port. */
function listeners(value: string): { name: string; host: string; port: number }[] {
  return value.split(',').map((l) => {
    const m = /^(\w+):\/\/([^:]*):(\d+)$/.exec(l.trim())
    if (!m) throw new Error(`bad listener ${l}`)
    return { name: m[1]!, host: m[2]!, port: Number(m[3]) }
  })
}

describe('docker-compose.yml', () => {
  it('parses without errors or warnings', () => {
    expect(doc.errors).toEqual([])
    expect(doc.warnings).toEqual([])
  })

  it('has the scale-out services, each introduced by a comment', () => {
    expect(Object.keys(services).sort()).toEqual(['clickhouse', 'core', 'core-2', 'front-door', 'iceberg-rest', 'kafka', 'lb', 'minio', 'minio-init', 'rest-proxy'])
    const node = doc.get('services', true)
    expect(isMap(node)).toBe(true)
    if (!isMap(node)) return
    ;(node.items as Pair[]).forEach((pair, i) => {
      const key = pair.key
      // The comment above the first entry belongs to the map itself in the yaml AST.
      const comment = (isScalar(key) ? key.commentBefore : undefined) ?? (i === 0 ? node.commentBefore : undefined)
      expect(typeof comment === 'string' && comment.trim().length > 10, `comment above ${String(isScalar(key) ? key.value : key)}`).toBe(true)
    })
  })

  it('pins every image to an exact tag of a registry and tag listed in deploy/images.txt', () => {
    const dockerfile = readFileSync(join(root, 'core/Dockerfile'), 'utf8')
    // A replica runs the image another service builds (core-2 runs core's): that one is ours, not pulled.
    const built = new Set(Object.values(services).filter((s) => s.build).map((s) => s.image))
    const references = [
      ...Object.entries(services).filter(([, s]) => !s.build && !built.has(s.image)).map(([name, s]) => [name, s.image!] as const),
      ...[...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => ['core/Dockerfile', m[1]!] as const),
    ]
    expect(references.length).toBeGreaterThan(6)
    for (const [where, image] of references) {
      expect(image, `${where} has an image`).toBeTruthy()
      expect(image, where).toMatch(/^[\w./-]+:[\w.-]+$/)
      expect(image, where).not.toMatch(/:(latest|stable|main|lts|current)$/)
      // A tag like 26.3 floats; at least major.minor.patch (or a dated release) is pinned.
      expect(image.split(':').at(-1), where).toMatch(/^(\d+\.\d+\.\d+|RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z)/)
      expect(knownImages, `${where}: ${image} is not in deploy/images.txt`).toContain(qualified(image))
    }
    // The list itself: fully qualified, from registries that serve these images, each entry used.
    for (const entry of knownImages) {
      expect(entry).toMatch(/^(docker\.io|quay\.io)\/[\w.-]+\/[\w.-]+:[\w.-]+$/)
      expect(references.map(([, i]) => qualified(i)), `${entry} is listed but used nowhere`).toContain(entry)
    }
    expect(new Set(knownImages).size).toBe(knownImages.length)
    expect(qualified('minio/minio:RELEASE.2025-04-22T22-12-26Z')).toBe('docker.io/minio/minio:RELEASE.2025-04-22T22-12-26Z')
    expect(knownImages).not.toContain('docker.io/minio/minio:RELEASE.2025-04-22T22-12-26Z')
  })

  it('points every depends_on at an existing service that is healthy or a finished job', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [target, { condition }] of Object.entries(s.depends_on ?? {})) {
        const t = services[target]
        expect(t, `${name} depends on ${target}`).toBeDefined()
        if (condition === 'service_healthy') expect(t?.healthcheck, `${target} needs a healthcheck for ${name}`).toBeDefined()
        else if (condition === 'service_completed_successfully') expect(t?.restart, `${target} is a one-shot job`).toBe('no')
        else throw new Error(`${name} → ${target}: condition ${condition} does not wait for readiness`)
      }
    }
  })

  it('gives every long-running service a healthcheck and a restart policy', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.restart === 'no') continue
      expect(s.healthcheck?.test, `${name} healthcheck`).toBeTruthy()
      expect(s.restart, `${name} restart`).toBe('unless-stopped')
    }
  })

  it('publishes only the front door beyond loopback, on 80 and 443, without clashes', () => {
    const hostPorts: string[] = []
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        if (name === 'front-door') expect(p, `${name} port ${p}`).toMatch(/^(80:80|443:443)$/)
        else expect(p, `${name} port ${p}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/)
        hostPorts.push(p.split(':').at(-2)!)
      }
    }
    expect(new Set(hostPorts).size).toBe(hostPorts.length)
    expect(services['front-door']?.ports).toEqual(['80:80', '443:443'])
    expect(services.core?.ports).toContain('127.0.0.1:8788:8788')
    expect(services.core?.ports).toContain('127.0.0.1:8789:8789')
  })

  it("routes only the edge's calls through the front door, over HTTPS, to core's internal port", () => {
    const fd = services['front-door']!
    expect(fd.depends_on?.core?.condition).toBe('service_healthy')
    expect(fd.configs).toEqual([{ source: 'caddyfile', target: '/etc/caddy/Caddyfile' }])
    for (const vars of [{}, PRODUCTION_ENV]) {
      const caddyfile = config('caddyfile', vars)
      // The site address is a bare host name: Caddy serves it over HTTPS (redirecting 80), never plain HTTP.
      const site = /^(\S+) \{$/m.exec(caddyfile)?.[1]
      expect(site).toBe((vars as Record<string, string>).ADC_PUBLIC_HOST ?? 'localhost')
      expect(site).not.toMatch(/^http:/)
      const handles = [...caddyfile.matchAll(/^\s*handle(?: (\S+))? \{$/gm)].map((m) => m[1] ?? '*')
      expect(handles).toEqual(['@produce', '/v1/internal/edge-config', '/healthz', '*'])
      // Produce calls to the edge's two topics only: never to the tenant or billing-job topics.
      expect(/@produce \{\s*method POST\s*path (.+)\s*\}/.exec(caddyfile)?.[1]?.trim().split(/\s+/)).toEqual([`/topics/${EVENTS_TOPIC}`, `/topics/${EDGE_STATS_TOPIC}`])
      const upstreams = [...caddyfile.matchAll(/reverse_proxy (\S+)/g)].map((m) => m[1])
      const internal = `core:${env('core').INTERNAL_PORT}`
      expect(upstreams).toEqual([internal, internal, internal])
      expect(caddyfile).toMatch(/handle \{\s*respond "not found" 404\s*\}/)
      expect(caddyfile).not.toContain('/metrics')
    }
    // Confluent's proxy instead of core's gateway: one variable, the same credentials.
    const confluent = config('caddyfile', { ADC_LOG_PROXY: 'rest-proxy:8082' })
    expect([...confluent.matchAll(/reverse_proxy (\S+)/g)][0]![1]).toBe(`rest-proxy:${new URL(env('rest-proxy').KAFKA_REST_LISTENERS!).port}`)
  })

  it("puts Confluent's REST proxy behind HTTP Basic with the same credentials as core's gateway", () => {
    const rp = env('rest-proxy')
    const core = env('core')
    expect(rp.KAFKA_REST_AUTHENTICATION_METHOD).toBe('BASIC')
    const mounted = new Map((services['rest-proxy']?.configs ?? []).map((c) => [c.source, c.target]))
    // KAFKAREST_OPTS points the JVM at the mounted JAAS file, whose section is named after the realm.
    const jaasPath = /-Djava\.security\.auth\.login\.config=(\S+)/.exec(rp.KAFKAREST_OPTS ?? '')?.[1]
    expect(jaasPath).toBe(mounted.get('rest-proxy-jaas'))
    const jaas = compose.configs?.['rest-proxy-jaas']?.content ?? ''
    expect(jaas).toMatch(new RegExp(`^${rp.KAFKA_REST_AUTHENTICATION_REALM}\\s*\\{`))
    // cp-kafka-rest 8.0 runs rest-utils 8.0 on Jetty 12: its property-file login module's package.
    expect(jaas).toContain('org.eclipse.jetty.security.jaas.spi.PropertyFileLoginModule required')
    expect(jaas.trim().endsWith('};')).toBe(true)
    // The login module reads the mounted users file; the user's role is one the proxy admits.
    expect(/file="([^"]+)"/.exec(jaas)?.[1]).toBe(mounted.get('rest-proxy-users'))
    // One pair of credentials for both proxies, so the edge works with either unchanged: in
    // development and with the operator's own.
    for (const vars of [{}, PRODUCTION_ENV]) {
      const line = /^([^:\s]+):\s*([^,\s]+),(\S+)\s*$/m.exec(config('rest-proxy-users', vars))
      expect(line).not.toBeNull()
      const [, user, password, roles] = line!
      expect(rp.KAFKA_REST_AUTHENTICATION_ROLES!.split(',')).toEqual(expect.arrayContaining(roles!.split(',')))
      expect(env('core', vars).REST_PROXY_USER).toBe(user)
      expect(env('core', vars).REST_PROXY_PASSWORD).toBe(password)
      expect(interpolate(JSON.stringify(services['rest-proxy']?.healthcheck?.test), vars)).toContain(`${user}:${password}`)
    }
    expect(core.REST_PROXY_USER).toBe('adc_edge_dev')
    // kafka-rest forces enable.idempotence=false and ignores a setting asking otherwise.
    expect(Object.keys(rp).some((k) => /IDEMPOTENCE/.test(k))).toBe(false)
  })

  it("wires core's KAFKA_BROKERS and the REST proxy to Kafka's internal listener", () => {
    const k = env('kafka')
    const advertised = listeners(k.KAFKA_ADVERTISED_LISTENERS!)
    const internal = advertised.find((l) => l.name === k.KAFKA_INTER_BROKER_LISTENER_NAME)!
    expect(internal.host).toBe('kafka')
    const bound = listeners(k.KAFKA_LISTENERS!)
    expect(bound.some((l) => l.name === internal.name && l.port === internal.port)).toBe(true)
    expect(env('core').KAFKA_BROKERS).toBe(`kafka:${internal.port}`)
    expect(env('rest-proxy').KAFKA_REST_BOOTSTRAP_SERVERS).toBe(`PLAINTEXT://kafka:${internal.port}`)
    // The host listener is the one published.
    const host = advertised.find((l) => l.host === '127.0.0.1')!
    expect(services.kafka?.ports).toContain(`127.0.0.1:${host.port}:${host.port}`)
    // Every listener name has a protocol, and the controller voters use a bound controller port.
    const protocols = new Map(k.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP!.split(',').map((p) => p.split(':') as [string, string]))
    for (const l of bound) expect(protocols.has(l.name), l.name).toBe(true)
    const voterPort = Number(k.KAFKA_CONTROLLER_QUORUM_VOTERS!.split(':').at(-1))
    expect(bound.find((l) => l.name === k.KAFKA_CONTROLLER_LISTENER_NAMES)?.port).toBe(voterPort)
    expect(k.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false')
    // KRaft formats storage with CLUSTER_ID, which must be a 16-byte UUID in base64url.
    expect(Buffer.from(k.CLUSTER_ID!, 'base64url')).toHaveLength(16)
    expect(k.CLUSTER_ID).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(services.core?.depends_on?.kafka?.condition).toBe('service_healthy')
    expect(services['rest-proxy']?.depends_on?.kafka?.condition).toBe('service_healthy')
  })

  it("wires core's CLICKHOUSE_URL to the clickhouse service with its user and database", () => {
    const url = new URL(env('core').CLICKHOUSE_URL!)
    const ch = env('clickhouse')
    expect(url.hostname).toBe('clickhouse')
    expect(url.port).toBe('8123')
    expect(url.username).toBe(ch.CLICKHOUSE_USER)
    expect(url.password).toBe(ch.CLICKHOUSE_PASSWORD)
    expect(env('core').CLICKHOUSE_DATABASE).toBe(ch.CLICKHOUSE_DB)
    expect(services.core?.depends_on?.clickhouse?.condition).toBe('service_healthy')
  })

  it('wires the Iceberg catalog and core to MinIO with the same credentials', () => {
    const m = env('minio')
    const ice = env('iceberg-rest')
    const core = env('core')
    expect(ice.CATALOG_S3_ENDPOINT).toBe('http://minio:9000')
    expect(new URL(core.ICEBERG_S3_ENDPOINT!).origin).toBe('http://minio:9000')
    expect(ice.AWS_ACCESS_KEY_ID).toBe(m.MINIO_ROOT_USER)
    expect(ice.AWS_SECRET_ACCESS_KEY).toBe(m.MINIO_ROOT_PASSWORD)
    expect(core.ICEBERG_S3_ACCESS_KEY_ID).toBe(m.MINIO_ROOT_USER)
    expect(core.ICEBERG_S3_SECRET_ACCESS_KEY).toBe(m.MINIO_ROOT_PASSWORD)
    // Core's table lies in the catalog's warehouse bucket; the catalog keeps its JDBC store on a volume.
    expect(new URL(core.ICEBERG_WAREHOUSE!).hostname).toBe(new URL(ice.CATALOG_WAREHOUSE!).hostname)
    expect(ice.CATALOG_URI).toMatch(/^jdbc:sqlite:file:\/home\/iceberg\/catalog\//)
    expect((services['iceberg-rest']?.['volumes' as keyof Service] as unknown as string[]).join(' ')).toContain(':/home/iceberg/catalog')
    expect(core.ICEBERG_CATALOG_URL).toBe('http://iceberg-rest:8181')
    // The bucket the catalog writes to is the one the init job creates.
    const bucket = new URL(ice.CATALOG_WAREHOUSE!).hostname
    const init = services['minio-init']?.['entrypoint' as keyof Service] as unknown as string[]
    expect(init.join(' ')).toContain(`mc mb --ignore-existing local/${bucket}`)
    expect(init.join(' ')).toContain(`${m.MINIO_ROOT_USER} ${m.MINIO_ROOT_PASSWORD}`)
  })

  it('puts every core replica\'s export files in a MinIO bucket the init job creates, presigned for MinIO\'s loopback port', () => {
    const m = env('minio')
    const init = (services['minio-init']?.['entrypoint' as keyof Service] as unknown as string[]).join(' ')
    for (const name of ['core', 'core-2']) {
      const c = loadConfig(env(name))
      expect(c.EXPORTS_S3_BUCKET, name).toBeDefined()
      expect(init).toContain(`mc mb --ignore-existing local/${c.EXPORTS_S3_BUCKET}`)
      expect(new URL(c.EXPORTS_S3_ENDPOINT ?? c.ICEBERG_S3_ENDPOINT!).origin).toBe('http://minio:9000')
      expect(c.EXPORTS_S3_ACCESS_KEY_ID ?? c.ICEBERG_S3_ACCESS_KEY_ID).toBe(m.MINIO_ROOT_USER)
      expect(c.EXPORTS_S3_SECRET_ACCESS_KEY ?? c.ICEBERG_S3_SECRET_ACCESS_KEY).toBe(m.MINIO_ROOT_PASSWORD)
      // Clients (over SSH, like the API) reach MinIO at its host port, which the URL's signature names.
      const pub = new URL(c.EXPORTS_S3_PUBLIC_ENDPOINT!)
      expect(services.minio?.ports).toContain(`${pub.hostname}:${pub.port}:9000`)
    }
    // Either replica's listing names the same files.
    const exportsOf = (name: string) => Object.fromEntries(Object.entries(env(name)).filter(([k]) => k.startsWith('EXPORTS_')))
    expect(exportsOf('core-2')).toEqual(exportsOf('core'))
  })

  it('gives core only settings its config knows, valid in development and, with a production .env, in production', () => {
    const known = new Set(Object.keys(configSchema.shape))
    const keys = Object.keys(services.core?.environment ?? {})
    expect(keys.filter((k) => !known.has(k)), 'environment keys core does not read').toEqual([])
    const dev = loadConfig(env('core'))
    expect(dev.ADC_ENV).toBe('development')
    expect(dev.CORE_HOST).toBe('0.0.0.0')
    expect(dev.KAFKA_BROKERS).toEqual(['kafka:9092'])
    expect(dev.CORE_PORT).toBe(8788)
    expect(dev.INTERNAL_HOST).toBe('0.0.0.0')
    expect(dev.INTERNAL_PORT).toBe(8789)
    expect(dev.ADC_BOOTSTRAP_ADMIN_KEY).toBeUndefined()
    // Production refuses development defaults: the compose file must let an .env replace every one.
    const prod = loadConfig(env('core', PRODUCTION_ENV))
    expect(prod).toMatchObject({ ADC_ENV: 'production', REST_PROXY_USER: 'edge_prod', EDGE_SYNC_KEY: PRODUCTION_ENV.EDGE_SYNC_KEY, ADC_BOOTSTRAP_ADMIN_KEY: PRODUCTION_ENV.ADC_BOOTSTRAP_ADMIN_KEY })
    expect(() => loadConfig(env('core', { ADC_ENV: 'production' }))).toThrow(/development defaults/)
  })

  it("checks core's health with its /healthz, which turns the container unhealthy when core is not", () => {
    const healthUrl = JSON.stringify(services.core?.healthcheck?.test)
    expect(healthUrl).toContain(`127.0.0.1:${env('core').CORE_PORT}/healthz`)
    expect(healthUrl).toContain('r.ok ? 0 : 1')
  })

  it('builds core from core/Dockerfile at the repository root, without chDB (ClickHouse is the server)', () => {
    const build = services.core?.build
    expect(build).toEqual({ context: '.', dockerfile: 'core/Dockerfile', args: { CHDB: 'false' } })
    const dockerfile = readFileSync(join(root, build!.dockerfile), 'utf8')
    expect(dockerfile).toContain('EXPOSE 8788 8789')
    expect(dockerfile).toMatch(/^ARG CHDB=true$/m)
    expect(existsSync(join(root, 'core/Dockerfile.dockerignore'))).toBe(true)
    // The data volume is where the image keeps DATA_DIR.
    expect(services.core?.volumes).toEqual([`core-data:${env('core').DATA_DIR}`])
    expect(dockerfile).toContain(`DATA_DIR=${env('core').DATA_DIR}`)
  })

  it('runs two core replicas of one fleet behind the load balancer, each on its own volume', () => {
    const [a, b] = [env('core'), env('core-2')]
    for (const k of ['KAFKA_BROKERS', 'CLICKHOUSE_URL', 'PROCESSOR_GROUP', 'LOG_PARTITIONS', 'REST_PROXY_USER', 'REST_PROXY_PASSWORD']) expect(b[k], k).toBe(a[k])
    expect(b.FLEET_ID ?? 'adc').toBe(a.FLEET_ID ?? 'adc')
    expect(services['core-2']?.volumes?.[0]?.split(':')[0]).not.toBe(services.core?.volumes?.[0]?.split(':')[0])
    const nginx = compose.configs?.['lb-nginx']?.content ?? ''
    for (const host of ['core:8788', 'core-2:8788', 'core:8789', 'core-2:8789']) expect(nginx).toContain(`server ${host}`)
    expect(services.lb?.configs?.[0]?.source).toBe('lb-nginx')
  })

  it('keeps each stateful service on a named volume', () => {
    const declared = Object.keys(compose.volumes ?? {})
    for (const name of ['kafka', 'clickhouse', 'minio', 'core', 'core-2', 'front-door']) {
      const vols = services[name]?.volumes ?? []
      expect(vols.length, name).toBeGreaterThan(0)
      for (const v of vols) expect(declared).toContain(v.split(':')[0])
    }
  })
})
