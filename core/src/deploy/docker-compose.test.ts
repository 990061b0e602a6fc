import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { isMap, isScalar, parseDocument, type Pair } from 'yaml'
import { configSchema } from '../config.js'

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
  build?: { context: string; dockerfile: string }
  ports?: string[]
  environment?: Record<string, string | number>
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
const env = (name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(services[name]?.environment ?? {}).map(([k, v]) => [k, String(v)]))

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
    expect(Object.keys(services).sort()).toEqual(['clickhouse', 'core', 'core-2', 'iceberg-rest', 'kafka', 'lb', 'minio', 'minio-init', 'rest-proxy'])
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

  it('pins every image to an exact tag', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.image ?? s.build, `${name} has an image or a build`).toBeTruthy()
      if (s.image && !s.build) {
        expect(s.image, name).toMatch(/^[\w./-]+:[\w.-]+$/)
        expect(s.image, name).not.toMatch(/:(latest|stable|main)$/)
        // A tag like 25.8 floats; at least major.minor.patch (or a dated release) is pinned.
        expect(s.image.split(':')[1], name).toMatch(/^(\d+\.\d+\.\d+|RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z)/)
      }
    }
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

  it('publishes host ports on loopback only, without clashes', () => {
    const hostPorts: string[] = []
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        expect(p, `${name} port ${p}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/)
        hostPorts.push(p.split(':')[1]!)
      }
    }
    expect(new Set(hostPorts).size).toBe(hostPorts.length)
    expect(services.core?.ports).toContain('127.0.0.1:8788:8788')
    expect(services.core?.ports).toContain('127.0.0.1:8789:8789')
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
    // cp-kafka-rest 8.0 runs Jetty 9.4: its property-file login module's package.
    expect(jaas).toContain('org.eclipse.jetty.jaas.spi.PropertyFileLoginModule required')
    expect(jaas.trim().endsWith('};')).toBe(true)
    // The login module reads the mounted users file; the user's role is one the proxy admits.
    expect(/file="([^"]+)"/.exec(jaas)?.[1]).toBe(mounted.get('rest-proxy-users'))
    const line = /^([^:\s]+):\s*([^,\s]+),(\S+)\s*$/m.exec(compose.configs?.['rest-proxy-users']?.content ?? '')
    expect(line).not.toBeNull()
    const [, user, password, roles] = line!
    expect(rp.KAFKA_REST_AUTHENTICATION_ROLES!.split(',')).toEqual(expect.arrayContaining(roles!.split(',')))
    // One pair of credentials for both proxies, so the edge works with either unchanged.
    expect(core.REST_PROXY_USER).toBe(user)
    expect(core.REST_PROXY_PASSWORD).toBe(password)
    expect(JSON.stringify(services['rest-proxy']?.healthcheck?.test)).toContain(`${user}:${password}`)
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
    const lake = new URL(core.ICEBERG_S3_URL!)
    expect(lake.origin).toBe('http://minio:9000')
    expect(ice.AWS_ACCESS_KEY_ID).toBe(m.MINIO_ROOT_USER)
    expect(ice.AWS_SECRET_ACCESS_KEY).toBe(m.MINIO_ROOT_PASSWORD)
    expect(core.ICEBERG_S3_ACCESS_KEY_ID).toBe(m.MINIO_ROOT_USER)
    expect(core.ICEBERG_S3_SECRET_ACCESS_KEY).toBe(m.MINIO_ROOT_PASSWORD)
    // Core's table lies in the catalog's warehouse bucket.
    expect(lake.pathname.split('/')[1]).toBe(new URL(ice.CATALOG_WAREHOUSE!).hostname)
    expect(core.ICEBERG_CATALOG_URL).toBe('http://iceberg-rest:8181')
    // The bucket the catalog writes to is the one the init job creates.
    const bucket = new URL(ice.CATALOG_WAREHOUSE!).hostname
    const init = services['minio-init']?.['entrypoint' as keyof Service] as unknown as string[]
    expect(init.join(' ')).toContain(`mc mb --ignore-existing local/${bucket}`)
    expect(init.join(' ')).toContain(`${m.MINIO_ROOT_USER} ${m.MINIO_ROOT_PASSWORD}`)
  })

  it("gives core only settings its config accepts, listening on all interfaces in the container", () => {
    const core = env('core')
    const known = new Set(Object.keys(configSchema.shape))
    const parsed = configSchema.parse(Object.fromEntries(Object.entries(core).filter(([k]) => known.has(k))))
    expect(parsed.CORE_HOST).toBe('0.0.0.0')
    expect(parsed.KAFKA_BROKERS).toEqual(['kafka:9092'])
    expect(parsed.CORE_PORT).toBe(8788)
    expect(parsed.INTERNAL_HOST).toBe('0.0.0.0')
    expect(parsed.INTERNAL_PORT).toBe(8789)
    const healthUrl = JSON.stringify(services.core?.healthcheck?.test)
    expect(healthUrl).toContain(`127.0.0.1:${parsed.CORE_PORT}/healthz`)
  })

  it('builds core from core/Dockerfile at the repository root, and the Dockerfile runs core', () => {
    const build = services.core?.build
    expect(build).toEqual({ context: '.', dockerfile: 'core/Dockerfile' })
    const dockerfile = readFileSync(join(root, build!.dockerfile), 'utf8')
    expect(dockerfile).toMatch(/^FROM node:20\.\d+\.\d+-/m)
    expect(dockerfile).toContain('EXPOSE 8788')
    expect(dockerfile).toMatch(/CMD \["node", "--import", "tsx", "core\/src\/main\.ts"\]/)
    // Every manifest the lockfile's workspaces need is copied before `npm ci`.
    for (const ws of ['schemas', 'core', 'edge']) expect(dockerfile).toContain(`COPY ${ws}/package.json ${ws}/`)
    expect(existsSync(join(root, 'core/Dockerfile.dockerignore'))).toBe(true)
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
    for (const name of ['kafka', 'clickhouse', 'minio', 'core', 'core-2']) {
      const vols = services[name]?.volumes ?? []
      expect(vols.length, name).toBeGreaterThan(0)
      for (const v of vols) expect(declared).toContain(v.split(':')[0])
    }
  })
})
