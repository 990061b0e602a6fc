import { execFileSync, spawn } from 'node:child_process'
import { builtinModules } from 'node:module'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CORE_NODE_FLAGS } from '../node-flags.js'

/**
 * core/Dockerfile without Docker: the image runs `npm run build --workspace core` (esbuild bundles
 * core and schemas into core/dist/main.js) and then `node core/dist/main.js` over production
 * dependencies only. This builds the same bundle, checks it needs nothing but core's production
 * dependencies, starts it, and checks that those dependencies install on linux/arm64.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const dockerfile = readFileSync(join(root, 'core/Dockerfile'), 'utf8')
const corePkg = JSON.parse(readFileSync(join(root, 'core/package.json'), 'utf8')) as { scripts: Record<string, string>; dependencies: Record<string, string> }
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; cpu?: string[]; os?: string[]; dev?: boolean }>
}

/** `pkg/sub/path` → `pkg`, `@scope/pkg/sub` → `@scope/pkg`. */
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/')
const builtin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier)

describe('core/Dockerfile', () => {
  it('builds on the current Node LTS line and runs the bundle over production dependencies only', () => {
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!)
    expect(froms.length).toBe(2)
    // Node 24 is the Active LTS line (docker-library's `lts-slim` tag points at it).
    for (const f of froms) expect(f).toMatch(/^docker\.io\/library\/node:24\.\d+\.\d+-bookworm-slim$/)
    expect(dockerfile).toContain('RUN npm run build --workspace core')
    expect(dockerfile).toMatch(/npm ci --omit=dev[^\n]*--workspace core/)
    expect(dockerfile).toMatch(new RegExp(`^CMD \\["node", ${CORE_NODE_FLAGS.map((f) => `"${f}", `).join('')}"core/dist/main\\.js"\\]$`, 'm'))
    expect(dockerfile).toContain('COPY --from=build /app/core/dist core/dist')
    // Every manifest the lockfile's workspaces need is copied before each `npm ci`.
    for (const ws of ['schemas', 'core', 'edge']) expect(dockerfile.split(`COPY ${ws}/package.json ${ws}/`).length - 1).toBe(2)
    expect(corePkg.scripts.build).toMatch(/--outfile=dist\/main\.js/)
    // tsx and other dev tools are not what runs.
    expect(dockerfile).not.toMatch(/--import", "tsx"/)
  })
})

describe('the bundle the image runs', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'adc-image-'))
  let bundle = ''
  beforeAll(() => {
    execFileSync('npm', ['run', 'build', '--workspace', 'core'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 })
    bundle = readFileSync(join(root, 'core/dist/main.js'), 'utf8')
  })
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it("imports nothing but core's production dependencies and Node's built-ins", () => {
    const imports = new Set([...bundle.matchAll(/^import\s[^'"]*?from\s*["']([^"']+)["']|^import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm)].map((m) => m[1] ?? m[2] ?? m[3]!))
    // Packages loaded at run time by name (chDB lazily, uPlot's files for the dashboard).
    for (const m of bundle.matchAll(/\brequire(?:\d*)(?:\.resolve)?\(\s*["']([^"'.][^"']*)["']\s*\)/g)) imports.add(m[1]!)
    expect(imports.size).toBeGreaterThan(5)
    const foreign = [...imports].filter((s) => !builtin(s) && !(packageOf(s) in corePkg.dependencies))
    expect(foreign).toEqual([])
    expect(imports).toContain('chdb/connection')
    // The workspace package is bundled, not installed.
    expect([...imports].some((s) => s.startsWith('@adc/'))).toBe(false)
  })

  it('starts, serves the API, the dashboard and the internal port, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [...CORE_NODE_FLAGS, join(root, 'core/dist/main.js')], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH, ADC_ENV: 'development', DATA_DIR: join(dataDir, 'data'), CORE_PORT: '0', INTERNAL_PORT: '0',
        ICEBERG_ENABLED: 'false', LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const started = await new Promise<{ port: number; internalPort: number }>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error('core did not start within 60 s')), 60_000)
      child.once('exit', (code) => fail(new Error(`core exited with ${code}`)))
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number; internalPort?: number }
          if (entry.msg === 'core started') {
            clearTimeout(timer)
            ok({ port: entry.port!, internalPort: entry.internalPort! })
          }
        } catch {
          /* not a log line */
        }
      })
    })
    try {
      const get = (port: number, path: string) => fetch(`http://127.0.0.1:${port}${path}`)
      expect((await get(started.port, '/healthz')).status).toBe(200)
      const dashboard = await get(started.port, '/dashboard')
      expect(dashboard.status).toBe(200)
      expect(await dashboard.text()).toContain('<html')
      expect((await get(started.port, '/dashboard/vendor/uplot.esm.js')).status).toBe(200)
      expect((await get(started.internalPort, '/metrics')).status).toBe(200)
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    }
  })
})

describe("core's production dependencies on linux/arm64", () => {
  /** Lockfile entry path of `name` as required from the package at `from` (Node's lookup, upward). */
  function locate(name: string, from: string): string | undefined {
    let base = from
    for (;;) {
      const candidate = `${base ? `${base}/` : ''}node_modules/${name}`
      if (lock.packages[candidate]) return candidate
      if (!base) return undefined
      const i = base.lastIndexOf('/node_modules/')
      base = i < 0 ? '' : base.slice(0, i)
    }
  }

  it('install on arm64: every platform binary has an arm64 build in the lockfile, except chDB, which is loaded only without a server', () => {
    const seen = new Set<string>()
    const problems: string[] = []
    const visit = (path: string) => {
      if (seen.has(path)) return
      seen.add(path)
      const entry = lock.packages[path]!
      const deps = { ...entry.dependencies, ...entry.optionalDependencies }
      const platformOptionals = Object.keys(entry.optionalDependencies ?? {}).map((n) => locate(n, path)).filter((p): p is string => !!p && !!lock.packages[p]!.cpu)
      if (platformOptionals.length > 0) {
        const linuxArm64 = platformOptionals.some((p) => lock.packages[p]!.cpu!.includes('arm64') && (lock.packages[p]!.os ?? ['linux']).includes('linux'))
        if (!linuxArm64 && !path.endsWith('node_modules/chdb')) problems.push(`${path} has no linux-arm64 binary in the lockfile`)
      }
      for (const name of Object.keys(deps)) {
        const found = locate(name, path)
        if (!found) continue
        const cpu = lock.packages[found]!.cpu
        // A required (not optional) dependency built for other processors only cannot install.
        if (cpu && !cpu.includes('arm64') && name in (entry.dependencies ?? {})) problems.push(`${found} (required by ${path}) is ${cpu.join('/')} only`)
        if (!cpu) visit(found)
      }
    }
    for (const name of Object.keys(corePkg.dependencies)) {
      const found = locate(name, 'core')
      expect(found, name).toBeDefined()
      visit(found!)
    }
    expect(seen.has('node_modules/lmdb')).toBe(true)
    expect(problems).toEqual([])
  })
})
